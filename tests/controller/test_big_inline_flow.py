"""A big inline flow end to end through the operator, with the CRD's admission policy in force.

The status path of a big FlowRun: every status write carries the whole object through the API
server (benchmarks/status_writes.py), the status stays bounded, and the spec stays immutable
(a ValidatingAdmissionPolicy, never evaluated on status writes) while the operator writes it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, task

pytestmark = pytest.mark.controlplane

N = 3000


def edit(frs: FlowRuns, name: str, spec: dict[str, Any]) -> Any:
    body = json.dumps({"spec": spec})
    what = ("patch", "flowrun", name, "-n", frs.namespace, "--type=merge", "-p", body)
    return frs.kubectl(*what, check=False)


@pytest.mark.slow
def test_a_big_inline_flow_ends_with_a_bounded_useful_status(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    tasks = [task(f"t{i}", "add", i, 1) for i in range(N)]
    spec = {
        "flow": {"tasks": tasks},
        "executor": {"type": "Local"},
        "returnTasks": ["t0", f"t{N - 1}"],
    }
    frs.apply("big", spec)

    def refused() -> bool:  # the policy is loaded asynchronously after the CRD's install
        result = edit(frs, "big", {"returnTasks": ["t1"]})
        return "spec.returnTasks is immutable" in result.stderr

    wait_for(refused, timeout=60, what="a spec edit refused by the policy")
    status = frs.wait_phase("big", timeout=600)
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
    # After the run: still immutable, and `cancel` is still the one field that can change.
    assert "spec.flow is immutable" in edit(frs, "big", {"flow": {"name": "x"}}).stderr
    assert edit(frs, "big", {"cancel": True}).returncode == 0
    stored = frs.get("big")
    assert stored is not None
    assert stored["spec"]["cancel"] is True
    assert stored["spec"]["returnTasks"] == ["t0", f"t{N - 1}"]
