"""A big inline flow end to end through the operator, with the CRD's admission policy in force.

The status path of a big FlowRun: every write of it costs the API server the whole flow
(benchmarks/status_writes.py), so its routine progress goes to a small companion ConfigMap owned
by the FlowRun, and the FlowRun gets a bounded number of writes (flowrun.runs.companion) that
leave it with the same complete, bounded status as a small run's; the spec stays immutable (a
ValidatingAdmissionPolicy, never evaluated on status writes) while the operator writes it.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from flowrun.cluster import base
from flowrun.controller import runner_objects as objects
from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from flowrun.runs import companion
from support.flowruns import FlowRuns, task

pytestmark = pytest.mark.controlplane

N = 3000


def patches(kubectl: Any, resource: str, subresource: str = "") -> int:
    """How many PATCH requests of `resource` the API server has served (its own counter)."""
    total = 0
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if (labels.get("verb"), labels.get("resource")) == ("PATCH", resource) and labels.get(
                "subresource", ""
            ) == subresource:
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def edit(frs: FlowRuns, name: str, spec: dict[str, Any]) -> Any:
    body = json.dumps({"spec": spec})
    what = ("patch", "flowrun", name, "-n", frs.namespace, "--type=merge", "-p", body)
    return frs.kubectl(*what, check=False)


@pytest.mark.slow
def test_a_big_inline_flow_ends_with_a_bounded_useful_status(
    shared_operator: OperatorProcess, frs: FlowRuns, kubectl: Any
) -> None:
    assert N >= companion.BIG_FLOW_TASKS
    tasks = [task(f"t{i}", "add", i, 1) for i in range(N)]
    spec = {
        "flow": {"tasks": tasks},
        "executor": {"type": "Local"},
        "returnTasks": ["t0", f"t{N - 1}"],
    }
    before = patches(kubectl, "flowruns", "status"), patches(kubectl, "configmaps")
    started = time.monotonic()
    frs.apply("big", spec)

    def refused() -> bool:  # the policy is loaded asynchronously after the CRD's install
        result = edit(frs, "big", {"returnTasks": ["t1"]})
        return "spec.returnTasks is immutable" in result.stderr

    wait_for(refused, timeout=60, what="a spec edit refused by the policy")
    status = frs.wait_phase("big", timeout=600)
    elapsed = time.monotonic() - started
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["progress"] == f"{N}/{N}"
    assert status["taskCounts"] == {"total": N, "Success": N}
    assert status["results"] == {"t0": 1, f"t{N - 1}": N}
    assert status["failed"] == 0
    # Bounded: the per-task map is cut to its size budget and says how much it left out.
    assert len(json.dumps(status)) < 256 * 1024
    assert 0 < len(status["tasks"]) < N
    assert status["tasksOmitted"] == N - len(status["tasks"])
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "True"
    # Its routine progress went to the companion; the FlowRun got a bounded number of writes
    # (start, results, end, ... and one per companion.REFRESH at most), not one per interval.
    flowrun_writes = patches(kubectl, "flowruns", "status") - before[0]
    assert flowrun_writes <= 8 + elapsed / companion.REFRESH, (flowrun_writes, elapsed)
    assert patches(kubectl, "configmaps") - before[1] >= 1
    stored = frs.get("big")
    assert stored is not None
    owner = base.Owner("flowrun.dev/v1alpha1", "FlowRun", "big", frs.namespace,
                       stored["metadata"]["uid"])  # fmt: skip
    live = frs.companion("big", "Succeeded")  # it follows the FlowRun's writes, the end too
    assert live["metadata"]["name"] == objects.status_name(owner)
    assert live["data"]["progress"] == f"{N}/{N}"
    assert json.loads(live["data"]["taskCounts"]) == {"total": N, "Success": N}
    (ref,) = live["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"]) == ("FlowRun", stored["metadata"]["uid"])
    # After the run: still immutable, and `cancel` is still the one field that can change.
    assert "spec.flow is immutable" in edit(frs, "big", {"flow": {"name": "x"}}).stderr
    assert edit(frs, "big", {"cancel": True}).returncode == 0
    stored = frs.get("big")
    assert stored is not None
    assert stored["spec"]["cancel"] is True
    assert stored["spec"]["returnTasks"] == ["t0", f"t{N - 1}"]


def test_the_operators_live_status_policy_decides_which_flows_get_a_companion(
    start_operator: Any, own_frs: FlowRuns, kubectl: Any
) -> None:
    """--live-status-tasks (Helm operator.liveStatus.minTasks): a flow of that many inline
    tasks gets the companion ConfigMap, a smaller one does not; both end with the same status."""
    frs = own_frs
    start_operator("-n", frs.namespace, "--allow-in-process", "--live-status-tasks=4")
    runs = (("four", 4, False), ("three", 3, False), ("served", 5, True))
    for name, n, server_side in runs:
        tasks = [task(f"t{i}", "add", i, 1) for i in range(n)]
        spec = {"flow": {"tasks": tasks}, "executor": {"type": "Local"}}
        frs.apply(name, spec, server_side=server_side)
    for name, n, _ in runs:
        status = frs.wait_phase(name, timeout=120)
        assert status["phase"] == "Succeeded", status.get("message")
        assert (status["progress"], status["taskCounts"]) == (
            f"{n}/{n}",
            {"total": n, "Success": n},
        )
    configmaps = kubectl.json("get", "configmaps", "-n", frs.namespace)["items"]
    live = {(c["metadata"]["ownerReferences"] or [{}])[0].get("name"): c["data"]
            for c in configmaps if c["metadata"].get("ownerReferences")}  # fmt: skip
    assert set(live) == {"four", "served"}, live
    assert (live["four"]["phase"], live["four"]["progress"]) == ("Succeeded", "4/4")

    # A big FlowRun applied client-side carries a second copy of itself: its author is told.
    def warned() -> set[str]:
        events = kubectl.json("get", "events", "-n", frs.namespace)["items"]
        return {e["involvedObject"]["name"] for e in events if e["reason"] == "ClientSideApply"}

    wait_for(
        lambda: warned() == {"four"}, timeout=30, what=f"one ClientSideApply Event: {warned()}"
    )
