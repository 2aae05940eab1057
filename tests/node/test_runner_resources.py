"""One FlowRun's runner resources (`spec.runner.resources`) on the real node: the runner Pod
carries the operator's default with the FlowRun's keys over it, and the real kubelet holds the
runner to them. The same flow (executor Local: it runs in the runner, and one task holds
300 MB) ends Failed when the FlowRun gives its runner too little memory (the kubelet OOMKills
its Pod; the operator ends the run at once and deletes its Job, not retried: the same limit
would kill it again; the message names spec.runner.resources), and Succeeded when it gives
enough.

The operator runs as a host process, so that its default (--runner-resources) is the test's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from flowrun.controller.runner_objects import LABEL_RUNNER
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns
from support.nodeops import HostOperator

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

DEFAULT = {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"cpu": "1"}}
HOG = 300_000_000  # bytes; bytearray() writes every one of them, so they count against the limit


def hog_spec(resources: dict[str, Any]) -> dict[str, Any]:
    """A flow that runs a while (so its first task's end reaches status), then holds HOG bytes."""
    return {
        "flow": {
            "tasks": [
                {"name": "pause", "fn": "time:sleep", "args": [3]},
                {"name": "hold", "fn": "builtins:bytearray", "args": [HOG], "upstream": ["pause"]},
                {"name": "size", "fn": "builtins:len", "args": [{"task": "hold"}]},
            ]
        },
        "executor": {"type": "Local"},
        "returnTasks": ["size"],
        "runner": {"resources": resources},
    }


def runner_resources(frs: FlowRuns) -> dict[str, Any]:
    """The resources of the run's first runner Pod, as the API server stored them (read while
    the Pod exists: it goes with the Job when the run ends)."""

    def found() -> dict[str, Any] | None:
        pods = frs.kubectl.json("get", "pods", "-n", frs.namespace, "-l", LABEL_RUNNER)["items"]
        return pods[0]["spec"]["containers"][0]["resources"] if pods else None

    got: dict[str, Any] = wait_for(found, timeout=120, interval=0.5, what="the runner Pod")
    return got


def run(
    host_operator: Callable[..., HostOperator],
    frs: FlowRuns,
    name: str,
    given: dict[str, Any],
    *,
    pod: dict[str, Any],
    timeout: float,
) -> tuple[dict[str, Any], float]:
    """Run the hog flow with the runner resources `given` (the operator's default: DEFAULT);
    its runner Pod must carry `pod`. The run's end and its seconds from creation."""
    the_operator = host_operator(f"--runner-resources={json.dumps(DEFAULT)}")
    started = time.monotonic()
    frs.apply(name, hog_spec(given))
    assert runner_resources(frs) == pod
    try:
        status = frs.wait_phase(name, timeout=timeout)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{the_operator.log_text()[-3000:]}") from None
    return status, time.monotonic() - started


def pods_created(frs: FlowRuns) -> list[str]:
    """The Job controller's word for each runner Pod it created (its Events outlive the Job)."""
    out = frs.kubectl("get", "events", "-n", frs.namespace, "-o", "json")
    return [
        e["message"]
        for e in json.loads(out.stdout)["items"]
        if (e["involvedObject"]["kind"], e["reason"]) == ("Job", "SuccessfulCreate")
    ]


def test_a_runner_given_too_little_memory_is_oomkilled_once_and_the_run_says_where_to_give_more(
    host_operator: Callable[..., HostOperator], frs: FlowRuns
) -> None:
    # The default request (256Mi) is above the FlowRun's limit: lowered to it. One Pod: the
    # operator deletes the Job on the OOM kill, before the Job controller's 10 s backoff ends.
    status, seconds = run(
        host_operator,
        frs,
        "starved",
        {"limits": {"memory": "200Mi"}},
        pod={
            "requests": {"cpu": "50m", "memory": "200Mi"},
            "limits": {"cpu": "1", "memory": "200Mi"},
        },
        timeout=420,
    )
    print(f"\nFailed {seconds:.0f}s after creation: {status['message']}")
    assert status["phase"] == "Failed", status
    assert {c["type"]: c for c in status["conditions"]}["Stalled"]["reason"] == "RunnerFailed"
    message = status["message"]
    assert message.startswith("The runner failed (OOMKilled, not retried: "), message
    assert message.count("OOMKilled (exit code 137)") == 1, message  # by the kubelet
    assert "went over its memory limit" in message, message
    assert "limits.memory in spec.runner.resources for this run" in message, message
    assert "--runner-resources for every run" in message, message
    # The runner went over running the flow's hog (not starting up): its log's last line says so.
    tail = message.split("The last lines of its log", 1)[1]
    assert "Task 'hold': Starting task run" in tail, message
    assert "size" not in (status.get("results") or {}), status
    # The Job was deleted at the first OOM kill, not retried up to its backoffLimit (3 Pods).
    # One Pod as a rule; a second only if a loaded machine delays the operator's 2 s look past
    # the Job controller's 10 s backoff, and that one goes with the Job.
    assert len(pods_created(frs)) <= 2, pods_created(frs)


def test_a_runner_given_enough_runs_the_flow_with_the_merged_resources(
    host_operator: Callable[..., HostOperator], frs: FlowRuns
) -> None:
    # requests.cpu and limits.cpu are the operator's, the memory keys the FlowRun's.
    status, seconds = run(
        host_operator,
        frs,
        "fed",
        {"requests": {"memory": "512Mi"}, "limits": {"memory": "768Mi"}},
        pod={
            "requests": {"cpu": "50m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "768Mi"},
        },
        timeout=240,
    )
    print(f"\nSucceeded {seconds:.0f}s after creation")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"size": HOG}, status
