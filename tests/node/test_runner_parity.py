"""Runner Pods on the real node: the same status as `flowrun run` for the same manifest, and a
runner that keeps dying ends its run with the Pod's reason.

The operator is a host process on the product path (tests/node/conftest.py); every run below
executes in a runner Pod of the project's image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.waiting import wait_for
from support.flowruns import ROOT, FlowRuns
from support.nodeops import HostOperator, PodOperator
from support.parity import comparable, example, run_locally

NodeOperator = HostOperator | PodOperator

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

LOCAL = {"type": "Dask", "dask": {"cluster": "Local", "workers": 1}}
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_runner_pod_writes_the_status_flowrun_run_prints(
    name: str, the_operator: NodeOperator, frs: FlowRuns, tmp_path: Path
) -> None:
    spec, templates = example(ROOT / "examples" / f"{name}.yaml")
    spec = {**spec, "executor": LOCAL}  # a LocalCluster inside the runner Pod
    for template in templates:
        frs.apply_template(template["metadata"]["name"], template["spec"]["flow"])
    frs.apply(name, spec, server_side=True)
    local = run_locally(name, spec, tmp_path, templates=templates)
    try:
        remote = frs.wait_phase(name, timeout=240)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{the_operator.log_text()[-3000:]}") from None
    assert comparable(remote) == comparable(local)


def test_a_runner_that_keeps_dying_ends_the_run_with_the_pods_reason(
    the_operator: NodeOperator, frs: FlowRuns
) -> None:
    """The task ends the runner's process (exit code 3) each time: the Job replaces the Pod
    until its backoffLimit is spent; the operator then writes Failed, saying why."""
    spec = {
        "flow": {"tasks": [{"name": "die", "fn": "os:_exit", "args": [3]}]},
        "executor": {"type": "Local"},
    }
    frs.apply("dies", spec)
    uid = str((frs.get("dies") or {})["metadata"]["uid"])
    try:
        status = frs.wait_phase("dies", "Failed", "Succeeded", "Cancelled", timeout=300)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{the_operator.log_text()[-3000:]}") from None
    assert status["phase"] == "Failed", status
    assert {c["type"]: c for c in status["conditions"]}["Stalled"]["reason"] == "RunnerFailed"
    assert "exit code 3" in status["message"], status
    assert "BackoffLimitExceeded" in status["message"] or "backoff" in status["message"].lower()

    def leftovers() -> list[Any]:
        jobs = frs.kubectl.json("get", "jobs,pods,sa,roles,rolebindings", "-n", frs.namespace)
        return [
            i["metadata"]["name"]
            for i in jobs["items"]
            if (i["metadata"].get("labels") or {}).get("flowrun.dev/flowrun-uid") == uid
        ]

    wait_for(lambda: not leftovers(), timeout=120, what="the runner objects to go")
