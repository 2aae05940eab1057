"""A runner Pod that no node can take (the real kube-scheduler's verdict): the run says so while
it waits, then ends Failed after its startup timeout, and its runner objects are deleted; or it
runs once a node takes it.

The operator runs as a host process on the product path (not the Helm-installed one: its runner
resources are the chart's). With runner requests far above the node's CPU (--runner-resources)
the scheduler finds no node: `0/1 nodes are available: 1 Insufficient cpu`. With the node tainted
(NoSchedule, untainted by the test), none until the taint goes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowrun.cluster.base import Owner
from flowrun.controller.runner_objects import runner_name
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns
from support.leftovers import RUNNER_KINDS, remaining
from support.nodeops import HostOperator

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

HUGE = json.dumps({"requests": {"cpu": "64", "memory": "64Mi"}})
# Long enough to see the waiting message on a loaded machine (the operator looks every 2 s).
STARTUP = 30
TAINT = "flowrun.dev/test-hold=1"
SPEC = {
    "flow": {"tasks": [{"name": "one", "fn": "operator:add", "args": [1, 2]}]},
    "executor": {"type": "Dask", "dask": {"cluster": "Local", "startupTimeoutSeconds": STARTUP}},
}


@pytest.fixture
def starved(host_operator: Callable[..., HostOperator]) -> HostOperator:
    """The operator, giving every runner Pod 64 CPUs' worth of requests."""
    return host_operator(f"--runner-resources={HUGE}")


def waiting_message(frs: FlowRuns, name: str, the_operator: HostOperator, timeout: float) -> str:
    """The operator's word that the runner's Pod waits for a node, said while the run is not
    over."""

    def waiting() -> dict[str, Any] | None:
        status = frs.status(name)
        return status if "cannot be scheduled yet" in str(status.get("message")) else None

    try:
        status = wait_for(waiting, timeout=timeout, interval=0.5, what="the waiting message")
    except TimeoutError as exc:
        status, log = frs.status(name), the_operator.log_text()[-3000:]
        raise AssertionError(f"{exc}\n{status}\n{log}") from None
    assert status["phase"] in ("Pending", "Running"), status
    return str(status["message"])


def test_an_unschedulable_runner_is_said_then_ends_the_run(
    starved: HostOperator, dev_node: Any, node_namespace: str, tmp_path: Path
) -> None:
    frs = FlowRuns(dev_node.kubectl, node_namespace, tmp_path)
    frs.apply("starved", SPEC)
    uid = (frs.get("starved") or {})["metadata"]["uid"]
    left = runner_name(Owner("flowrun.dev/v1alpha1", "FlowRun", "starved", frs.namespace, uid))
    said = waiting_message(frs, "starved", starved, STARTUP + 60)
    seen = time.monotonic()
    assert "Insufficient cpu" in said, said  # the scheduler's own words
    assert "runner.resources" in said, said  # and what to do
    assert "--runner-resources" in said, said
    assert "spec.runner.resources for this run" in said, said
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
    # The Job's Pod goes after it (background propagation: the garbage collector).
    wait_for(lambda: not frs.kubectl.json("get", "pods", "-n", frs.namespace)["items"],
             timeout=60, what="the runner's Pod gone")  # fmt: skip


def test_a_runner_pod_a_node_takes_later_runs_the_flow(
    host_operator: Callable[..., HostOperator], dev_node: Any, node_namespace: str, tmp_path: Path
) -> None:
    """The wait is no failure: the run goes on when a node takes its runner (here: the taint
    removed, as a cluster autoscaler's new node would), well within its startup timeout."""
    the_operator = host_operator()
    frs = FlowRuns(dev_node.kubectl, node_namespace, tmp_path)
    node = dev_node.kubectl("get", "nodes", "-o", "name").stdout.split()[0].removeprefix("node/")
    dev_node.kubectl("taint", "nodes", node, f"{TAINT}:NoSchedule")
    try:
        frs.apply("held", {**SPEC, "executor": {"type": "Local"}, "returnTasks": ["one"]})
        said = waiting_message(frs, "held", the_operator, 120)
        assert "untolerated taint" in said, said
        assert "Make a node take it" in said, said
    finally:
        dev_node.kubectl("taint", "nodes", node, f"{TAINT}:NoSchedule-", check=False)
    status = frs.wait_phase("held", timeout=180)
    assert status["phase"] == "Succeeded", status
    assert status["results"]["one"] == 3, status
    assert "scheduled" not in status["message"], status
