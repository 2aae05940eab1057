"""Many FlowRuns at once: all finish, each with its own correct result."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, local_spec, task

pytestmark = pytest.mark.controlplane

N = 100


@pytest.mark.slow
def test_hundred_flowruns_at_once_all_finish_correctly(
    shared_operator: OperatorProcess, frs: FlowRuns, kubectl: Any
) -> None:
    items = [
        {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": "FlowRun",
            "metadata": {"name": f"many-{i:03d}", "namespace": frs.namespace},
            "spec": local_spec([task("a", "add", i, 1)], returnTasks=["a"]),
        }
        for i in range(N)
    ]
    kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )

    def finished() -> list[dict[str, Any]] | None:
        out = kubectl("get", "flowruns", "-n", frs.namespace, "-o", "json")
        runs: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        done = [r for r in runs if (r.get("status") or {}).get("phase") in {"Succeeded", "Failed"}]
        return runs if len(done) == N else None

    runs = wait_for(finished, timeout=300, interval=2, what=f"{N} FlowRuns finished")
    for run in runs:
        i = int(run["metadata"]["name"].split("-")[1])
        status = run["status"]
        assert status["phase"] == "Succeeded", (run["metadata"]["name"], status)
        assert status["results"] == {"a": i + 1}
        assert status.get("progress") == "1/1", json.dumps(status)
    metrics = shared_operator.metrics()
    # The operator also sees finished FlowRuns of earlier tests (their namespaces may still be
    # terminating), so at least N.
    succeeded = re.search(r'^flowrun_flowruns\{phase="Succeeded"\} (\S+)$', metrics, re.M)
    assert succeeded is not None
    assert float(succeeded.group(1)) >= N
    assert 'flowrun_task_state_changes_total{state="Success"}' in metrics
    assert "flowrun_runs_in_flight 0.0" in metrics
