"""Stopping a running FlowRun: `spec.cancel`, the deadline, deletion. Each stops the work,
closes the cluster and records why; a live task state is visible while the task runs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, local_spec, task

pytestmark = pytest.mark.controlplane


def gated(key: str) -> list[dict[str, Any]]:
    # The gate gives up after 30 s, so an abandoned worker thread does not linger long.
    return [task("g", "gate", key, None, 30), task("after", "mark", f"{key}-after", {"task": "g"})]


def running(frs: FlowRuns, name: str, key: str) -> dict[str, Any]:
    """Wait until the gate task runs: its Running state must reach status while it waits."""
    wait_for(lambda: frs.runs(f"{key}-started"), what=f"{key} started")

    def task_running() -> dict[str, Any] | None:
        status = frs.status(name)
        g = status.get("tasks", {}).get("g", {})
        return status if g.get("state") == "Running" else None

    result: dict[str, Any] = wait_for(task_running, timeout=30, what=f"{name}: g Running")
    return result


def test_live_task_state_then_success(shared_operator: OperatorProcess, frs: FlowRuns) -> None:
    key = f"live-{frs.namespace}"
    frs.apply("live", local_spec(gated(key)))
    status = running(frs, "live", key)
    assert status["phase"] == "Running"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Reconciling"] == "True"
    frs.open_gate(key)
    assert frs.wait_phase("live")["phase"] == "Succeeded"
    assert frs.runs(f"{key}-after") == 1


def test_cancel_stops_the_work(
    shared_operator: OperatorProcess, frs: FlowRuns, kubectl: Any
) -> None:
    key = f"cancel-{frs.namespace}"
    frs.apply("cancel", local_spec(gated(key)))
    running(frs, "cancel", key)
    kubectl(
        "patch", "flowrun", "cancel", "-n", frs.namespace, "--type=merge",
        "-p", json.dumps({"spec": {"cancel": True}}),
    )  # fmt: skip
    status = frs.wait_phase("cancel")
    assert status["phase"] == "Cancelled"
    assert "spec.cancel" in status["message"]
    assert {c["type"]: c for c in status["conditions"]}["Stalled"]["reason"] == "CancelRequested"
    wait_for(lambda: "ClusterDeleted" in frs.event_reasons("cancel"), what="ClusterDeleted")
    frs.open_gate(key)  # too late: nothing downstream may run any more
    assert frs.runs(f"{key}-after") == 0


def test_deadline_fails_the_run(shared_operator: OperatorProcess, frs: FlowRuns) -> None:
    key = f"deadline-{frs.namespace}"
    frs.apply("deadline", local_spec(gated(key), activeDeadlineSeconds=3))
    status = frs.wait_phase("deadline")
    assert status["phase"] == "Failed"
    assert "activeDeadlineSeconds" in status["message"]
    assert {c["type"]: c for c in status["conditions"]}["Stalled"]["reason"] == "DeadlineExceeded"
    wait_for(lambda: "ClusterDeleted" in frs.event_reasons("deadline"), what="ClusterDeleted")
    assert frs.runs(f"{key}-after") == 0


def test_delete_cancels_and_leaves_nothing(
    shared_operator: OperatorProcess, frs: FlowRuns, kubectl: Any
) -> None:
    key = f"delete-{frs.namespace}"
    frs.apply("doomed", local_spec(gated(key)))
    running(frs, "doomed", key)
    kubectl("delete", "flowrun", "doomed", "-n", frs.namespace, "--timeout=60s")
    assert frs.get("doomed") is None  # the finalizer was released after the cleanup
    reasons = wait_for(
        lambda: (r := frs.event_reasons("doomed")) >= {"ClusterDeleted", "FlowRunDeleted"} and r,
        what="cleanup events",
    )
    assert "ClusterCreated" in reasons
    frs.open_gate(key)
    assert frs.runs(f"{key}-after") == 0


def test_cancel_at_creation_runs_nothing(shared_operator: OperatorProcess, frs: FlowRuns) -> None:
    key = f"born-cancelled-{frs.namespace}"
    frs.apply("born-cancelled", {**local_spec([task("m", "mark", key)]), "cancel": True})
    status = frs.wait_phase("born-cancelled")
    assert status["phase"] == "Cancelled", status
    assert "spec.cancel" in status["message"]
    assert frs.runs(key) == 0
    assert "ClusterCreated" not in frs.event_reasons("born-cancelled")


def test_a_task_stuck_past_its_timeout_is_counted_in_metrics(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    def abandoned() -> float:
        metrics = shared_operator.metrics()
        found = re.search(r"^flowrun_abandoned_task_threads_total (\S+)$", metrics, re.M)
        assert found is not None, metrics
        return float(found.group(1))

    before = abandoned()  # the operator is shared: earlier tests may have abandoned threads too
    stuck = {"name": "stuck", "fn": "time:sleep", "args": [20], "timeoutSeconds": 1}
    frs.apply("stuck", local_spec([stuck], executor={"type": "Local"}))
    status = frs.wait_phase("stuck")
    assert status["phase"] == "Failed", status
    assert status["tasks"]["stuck"]["state"] == "TimedOut"
    assert abandoned() >= before + 1
