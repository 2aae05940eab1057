"""A runner Pod that no node can take (the real kube-scheduler's verdict): the run says so while
it waits, then ends Failed after its startup timeout, and its runner objects are deleted.

The operator runs as a host process on the product path with runner requests far above the
node's CPU (--runner-resources), so the scheduler finds no node: `0/1 nodes are available: 1
Insufficient cpu`. Not the Helm-installed operator: its runner resources are the chart's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrun.cluster.base import Owner
from flowrun.controller.runner_objects import runner_name
from flowrun.dev.waiting import wait_for
from support.flowruns import ROOT, FlowRuns, crd_established
from support.leftovers import RUNNER_KINDS, remaining
from support.nodeops import HostOperator

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

HUGE = json.dumps({"requests": {"cpu": "64", "memory": "64Mi"}})
# Long enough to see the waiting message on a loaded machine (the operator looks every 2 s).
STARTUP = 30
SPEC = {
    "flow": {"tasks": [{"name": "one", "fn": "operator:add", "args": [1, 2]}]},
    "executor": {"type": "Dask", "dask": {"cluster": "Local", "startupTimeoutSeconds": STARTUP}},
}


@pytest.fixture
def starved(dev_node: Any, node_namespace: str, tmp_path: Path) -> Iterator[HostOperator]:
    """The operator, giving every runner Pod 64 CPUs' worth of requests."""
    dev_node.kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
    wait_for(lambda: crd_established(dev_node.kubectl, "flowruns.flowrun.dev"), what="the CRD")
    args = (f"--runner-resources={HUGE}",)
    host = HostOperator(dev_node.node.kubeconfig, tmp_path, node_namespace, dev_node.image, *args)
    host.start()
    yield host
    host.stop()


def test_an_unschedulable_runner_is_said_then_ends_the_run(
    starved: HostOperator, dev_node: Any, node_namespace: str, tmp_path: Path
) -> None:
    frs = FlowRuns(dev_node.kubectl, node_namespace, tmp_path)
    frs.apply("starved", SPEC)
    uid = (frs.get("starved") or {})["metadata"]["uid"]
    left = runner_name(Owner("flowrun.dev/v1alpha1", "FlowRun", "starved", frs.namespace, uid))

    def waiting() -> str | None:
        message = str(frs.status("starved").get("message") or "")
        return message if "cannot be scheduled yet" in message else None

    try:
        said = wait_for(waiting, timeout=STARTUP + 60, interval=0.5, what="the waiting message")
    except TimeoutError as exc:
        status, log = frs.status("starved"), starved.log_text()[-3000:]
        raise AssertionError(f"{exc}\n{status}\n{log}") from None
    seen = time.monotonic()
    assert frs.status("starved")["phase"] in ("Pending", "Running"), frs.status("starved")
    assert "Insufficient cpu" in said, said  # the scheduler's own words
    assert "runner.resources" in said, said  # and what to do
    assert "--runner-resources" in said, said
    wait_for(lambda: "RunnerUnschedulable" in frs.event_reasons("starved"), what="the Event")

    status = frs.wait_phase("starved", timeout=STARTUP + 90)
    print(f"\nwaiting: {said}\nFailed {time.monotonic() - seen:.1f}s after that message was seen")
    assert status["phase"] == "Failed", status
    stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
    assert stalled["reason"] == "RunnerNotScheduled", status
    assert f"was not scheduled within {STARTUP}s" in status["message"], status
    assert "Insufficient cpu" in status["message"], status
    assert "then create the FlowRun again" in status["message"], status
    wait_for(lambda: not remaining(frs, left, RUNNER_KINDS), timeout=60, what="runner objects gone")
    pods = frs.kubectl.json("get", "pods", "-n", frs.namespace)["items"]
    assert pods == [] or all(p["metadata"].get("deletionTimestamp") for p in pods), pods
