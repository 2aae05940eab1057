"""A big run's FlowRun lists only part of its task map (the companion ConfigMap holds the whole
bounded map, `flowrun.runs.companion`): an operator killed mid-run and started again reads both
back, and no finished task that only the companion lists runs again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrun.api.status import StatusLimits
from flowrun.cluster import base
from flowrun.controller import runner_objects as objects
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, task

pytestmark = pytest.mark.controlplane

N = 400  # failed tasks: each entry ~150 bytes, so the FlowRun's lean map lists about 30


def companion_map(frs: FlowRuns, kubectl: Any, name: str) -> dict[str, Any]:
    stored = frs.get(name)
    assert stored is not None
    owner = base.Owner("flowrun.dev/v1alpha1", "FlowRun", name, frs.namespace,
                       stored["metadata"]["uid"])  # fmt: skip
    got = kubectl("get", "configmap", objects.status_name(owner), "-n", frs.namespace,
                  "-o", "json", check=False)  # fmt: skip
    if got.returncode != 0:
        return {}
    data = json.loads(got.stdout).get("data") or {}
    found: dict[str, Any] = json.loads(data.get("tasks") or "{}")
    return found


def test_a_restarted_big_run_does_not_rerun_tasks_only_its_companion_lists(
    start_operator: Any, own_frs: FlowRuns, kubectl: Any
) -> None:
    frs = own_frs
    ns = frs.namespace
    failing = [task(f"f{i}", "mark_fail", f"f-{ns}") for i in range(N)]
    # `s` outlasts the refresh, so the FlowRun (and the companion's map after it) is written
    # with every `f` finished; `g` then holds the run until the operator is killed.
    tasks = [*failing, {"name": "s", "fn": "time:sleep", "args": [2]},
             task("g", "gate", f"g-{ns}", {"task": "s"})]  # fmt: skip
    spec = {"flow": {"tasks": tasks}, "executor": {"type": "Local"}}
    args = ("-n", ns, "--allow-in-process", "--live-status-tasks=100", "--live-status-refresh=1")
    first = start_operator(*args)
    frs.apply("big", spec)
    wait_for(lambda: frs.runs(f"g-{ns}-started"), timeout=120, what="g started")

    def all_failed_in_companion() -> bool:
        full = companion_map(frs, kubectl, "big")
        return sum(e.get("state") == "Failed" for e in full.values()) == N

    wait_for(all_failed_in_companion, timeout=60, what="the companion's map lists every f")
    status = frs.status("big")
    assert status["phase"] == "Running"
    assert status["statusConfigMap"].endswith("-status")
    listed = [n for n in status.get("tasks", {}) if n.startswith("f")]
    assert 0 < len(listed) < N, len(listed)  # lean: the FlowRun lists only some of them
    assert (
        len(json.dumps(status["tasks"], separators=(",", ":"))) <= StatusLimits().lean_tasks_bytes
    )
    assert frs.runs(f"f-{ns}") == N
    first.kill()  # no final status: the next operator takes the run over

    start_operator(*args)
    wait_for(lambda: "Resumed" in frs.event_reasons("big"), what="Resumed event")
    frs.open_gate(f"g-{ns}")
    status = frs.wait_phase("big", timeout=120)
    assert status["phase"] == "Failed", status.get("message")
    assert frs.runs(f"f-{ns}") == N  # not one ran again, listed on the FlowRun or not
    assert status["taskCounts"]["Failed"] == N
    assert status["taskCounts"]["Success"] == 2
    assert status["progress"] == f"{N + 2}/{N + 2}"
    full = companion_map(frs, kubectl, "big")
    assert len(full) == N + 2
    assert {full[f"f{i}"]["state"] for i in range(N)} == {"Failed"}
    assert status["tasksOmitted"] == N + 2 - len(status["tasks"])
