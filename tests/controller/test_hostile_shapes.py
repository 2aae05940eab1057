"""Shapes the API server accepts but nothing downstream may walk blindly: each ends in a final
phase with a reason naming the field, on the real operator, and disturbs no other FlowRun."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from support.flowruns import FlowRuns, local_spec, task

pytestmark = pytest.mark.controlplane


@pytest.fixture(autouse=True)
def deep_json() -> Iterator[None]:
    """This test's own json.dumps/loads of the manifests need the room too."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(40_000)
    yield
    sys.setrecursionlimit(limit)


def nested(levels: int) -> Any:
    value: Any = 1
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("levels", [600, 9000])
def test_deeply_nested_arguments_fail_with_a_reason(
    shared_operator: OperatorProcess, frs: FlowRuns, levels: int
) -> None:
    """kopf deep-copies and diffs each body recursively before any handler runs: at 500 levels
    it raised RecursionError on every event, and the FlowRun never got a status."""
    frs.apply("deep", local_spec([task("a", "add", nested(levels), 2)]))
    frs.apply("healthy", local_spec([task("a", "add", 1, 2)]))

    deep = frs.wait_phase("deep", timeout=120)
    assert deep["phase"] == "Failed"
    assert "spec.flow.tasks[0].args[0]" in deep["message"]
    assert "nested deeper than 100 levels" in deep["message"]
    assert {c["type"]: c for c in deep["conditions"]}["Stalled"]["reason"] == "InvalidSpec"
    assert frs.wait_phase("healthy", timeout=120)["phase"] == "Succeeded"
    assert shared_operator.proc is not None
    assert shared_operator.proc.poll() is None


def test_the_api_server_refuses_what_the_operator_has_no_room_for(
    kubectl: Any, op_namespace: str
) -> None:
    """The operator's recursion room (flowrun operator) is sized for the API server's own
    bound of 10,000 levels; deeper manifests never reach it."""
    body = {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": "deeper", "namespace": op_namespace},
        "spec": local_spec([task("a", "add", nested(10_050), 2)]),
    }
    result = kubectl("create", "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "max depth" in result.stderr
