"""`spec.executor.dask.adapt`: the range is checked where it is written, by the models (`flowrun
run`, the operator) and by the API server (CEL rules of the generated CRD), naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from flowrun.api import models
from flowrun.controller.clusteropts import cluster_options

BAD = [
    ({"adapt": {"minimum": 3, "maximum": 2}}, "dask.adapt.maximum must be at least dask.adapt"),
    ({"adapt": {"maximum": 3}, "workers": 2}, "dask.workers and dask.adapt contradict each other"),
    (
        {"cluster": "External", "address": "tcp://h:8786", "adapt": {"maximum": 3}},
        "dask.adapt needs a cluster the run owns",
    ),
    ({"cluster": "Local", "adapt": {"maximum": 33}}, "dask.adapt.maximum is at most 32"),
    ({"adapt": {"minimum": -1, "maximum": 3}}, "minimum"),
    ({"adapt": {"maximum": 1001}}, "maximum"),
    ({"adapt": {"minimum": 1}}, "maximum"),
]  # fmt: skip


def spec_with(dask: dict[str, Any]) -> dict[str, Any]:
    return {
        "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [1, 2]}]},
        "executor": {"type": "Dask", "dask": dask},
    }


@pytest.mark.parametrize(("dask", "words"), BAD)
def test_the_models_refuse_a_contradicting_range(dask: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as info:
        models.FlowRunSpec.model_validate(spec_with(dask))
    assert words in str(info.value)


def test_the_cluster_starts_with_the_minimum_and_at_least_one_worker() -> None:
    counts = {}
    for minimum in (0, 1, 4):
        spec = models.FlowRunSpec.model_validate(
            spec_with({"adapt": {"minimum": minimum, "maximum": 6}})
        )
        options = cluster_options(spec, default_image="img:1")
        assert options.adapt == (minimum, 6)
        counts[minimum] = options.workers
    assert counts == {0: 1, 1: 1, 4: 4}
    fixed = cluster_options(models.FlowRunSpec.model_validate(spec_with({})), default_image=None)
    assert (fixed.workers, fixed.adapt) == (1, None)


def apply(kubectl: Any, namespace: str, name: str, dask: dict[str, Any]) -> Any:
    body = {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec_with(dask),
    }
    return kubectl("apply", "-f", "-", input=yaml.safe_dump(body), check=False)


@pytest.mark.controlplane
@pytest.mark.parametrize(("dask", "words"), BAD)
def test_the_api_server_refuses_a_contradicting_range(
    installed: None, kubectl: Any, namespace: str, dask: dict[str, Any], words: str
) -> None:
    result = apply(kubectl, namespace, "bad", dask)
    assert result.returncode != 0
    assert "spec.executor.dask" in result.stderr
    assert words in result.stderr, result.stderr


@pytest.mark.controlplane
def test_the_api_server_keeps_a_range_and_adds_no_worker_count(
    installed: None, kubectl: Any, namespace: str
) -> None:
    """No `workers` default: with it the API server would make every `adapt` contradict it."""
    result = apply(kubectl, namespace, "ok", {"adapt": {"maximum": 3}})
    assert result.returncode == 0, result.stderr
    dask = kubectl.json("get", "fr", "ok", "-n", namespace)["spec"]["executor"]["dask"]
    assert dask["adapt"] == {"minimum": 0, "maximum": 3}
    assert "workers" not in dask
    fixed = apply(kubectl, namespace, "fixed", {"workers": 2})
    assert fixed.returncode == 0, fixed.stderr
