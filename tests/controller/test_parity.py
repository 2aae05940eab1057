"""One manifest, one status: `flowrun run` and the operator must agree (issue 9).

Every manifest in examples/ and a set of edge manifests run through both front ends: `flowrun
run` as a subprocess, and the real operator on the dev control plane. The two statuses must be
equal but for what differs by nature: times and the cluster's address.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from support.flowruns import ROOT, FlowRuns, task
from support.parity import comparable, example, run_locally

pytestmark = pytest.mark.controlplane

LOCAL = {"type": "Dask", "dask": {"cluster": "Local", "workers": 1}}
SECRET = "t0ken-Parity-0123456789"


def edge(tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    flow = {"tasks": tasks, **spec.pop("flow", {})}
    return {"flow": flow, "executor": LOCAL, **spec}


EDGES: dict[str, dict[str, Any]] = {
    "null-default": edge(
        [task("a", "echo", {"parameter": "p"})],
        flow={"parameters": [{"name": "p", "default": None}]},
        returnTasks=["a"],
    ),
    "paused": edge(
        [task("a", "add", 1, 2), task("b", "double", {"task": "a"}, trigger="manual_only")]
    ),
    "big-results": edge(
        [
            task("small", "numbers", 10),
            task("medium", "numbers", 1200),
            task("large", "numbers", 5000),
        ],
        returnTasks=["small", "medium", "large"],
    ),
    "secret": edge(
        [task("a", "echo", {"parameter": "token"}), task("b", "leak", {"parameter": "token"})],
        flow={"parameters": [{"name": "token", "required": True}], "referenceTasks": ["a"]},
        parametersFrom=[{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
        returnTasks=["a"],
    ),
    "given-states": edge(
        [
            task("a", "fail", "a must not run"),
            task("b", "double", {"task": "a"}),
            task("c", "add", {"task": "b"}, 1),
            task("d", "fail", "given Failed"),
        ],
        startTasks=["b"],
        taskStates={"a": {"state": "Success", "result": 21}, "d": {"state": "Failed"}},
        returnTasks=["c"],
    ),
    "ref-by-name": {  # `total` is unique (slug total-1); `x` is not: written by slug
        "flow": {"ref": "frflows:totals", "referenceTasks": ["total"]},
        "returnTasks": ["total", "x-2"],
        "executor": LOCAL,
    },
    "cancel-at-creation": edge(
        [task("a", "add", 1, 2), task("b", "double", {"task": "a"})], cancel=True
    ),
    "deadline": edge(  # stopped in `nap`: a done, nap Cancelled, after never started
        [
            task("a", "add", 1, 2),
            {"name": "nap", "fn": "time:sleep", "args": [30], "upstream": ["a"]},
            task("after", "double", {"task": "a"}, upstream=["nap"]),
        ],
        activeDeadlineSeconds=8,
    ),
    "failing-reference": edge(
        [task("ok", "add", 1, 1), task("bad", "fail", "disk full")],
        flow={"referenceTasks": ["bad"]},
    ),
}


def manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        spec, _ = example(path)
        found[path.stem] = {**spec, "executor": LOCAL}
    return {**found, **EDGES}


def templates_of(name: str) -> list[dict[str, Any]]:
    path = ROOT / "examples" / f"{name}.yaml"
    return example(path)[1] if path.exists() else []


@pytest.mark.parametrize("name", sorted(manifests()))
def test_flowrun_run_and_the_operator_give_the_same_status(
    name: str, shared_operator: OperatorProcess, frs: FlowRuns, tmp_path: Path
) -> None:
    spec = manifests()[name]
    if spec.get("parametersFrom"):
        frs.kubectl("create", "secret", "generic", "creds", "-n", frs.namespace,
                    f"--from-literal=token={SECRET}")  # fmt: skip
    templates = templates_of(name)
    for template in templates:
        frs.apply_template(template["metadata"]["name"], template["spec"]["flow"])
    frs.apply(name, spec, server_side=True)  # client-side apply would drop `default: null`
    params = [f"--param=token={SECRET}"] if spec.get("parametersFrom") else []
    local = run_locally(name, spec, tmp_path, params, templates)
    remote = frs.wait_phase(name, "Succeeded", "Failed", "Cancelled", "Running"
                            ) if name == "paused" else frs.wait_phase(name)  # fmt: skip
    assert comparable(remote) == comparable(local)
    assert SECRET not in str(remote)
    assert base64.b64encode(SECRET.encode()).decode() not in str(remote)
