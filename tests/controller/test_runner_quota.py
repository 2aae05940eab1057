"""Runner Pods under a namespace's ResourceQuota or LimitRange, as the real API server admits or
refuses them.

No kubelet runs here: the Job controller creates (or fails to create) the runner's Pod, and the
API server's quota admission decides. A Pod it refuses never exists, so only the Job
controller's `FailedCreate` Event says why: the run ends Failed with that reason after the
operator's grace (`--runner-create-grace`: 60 s by default, 5 s here, so the test does not wait
a minute for a refusal that never clears), not Running forever. With the operator's default
runner resources (requests), a quota that requires requests admits the runner.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrun.controller.settings import DEFAULT_RUNNER_RESOURCES
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, local_spec, task

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

IMAGE = "registry.invalid/flows:1"
GRACE = 5  # seconds: --runner-create-grace


def quota(frs: FlowRuns, hard: dict[str, str]) -> None:
    """A ResourceQuota, once the quota controller has counted its usage: before that the API
    server refuses every Pod it governs ("status unknown for quota")."""
    body = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "runners", "namespace": frs.namespace},
        "spec": {"hard": hard},
    }
    frs.kubectl("apply", "-f", "-", input=json.dumps(body))

    def counted() -> bool:
        status = frs.kubectl.json("get", "resourcequota", "runners", "-n", frs.namespace)
        return set((status.get("status") or {}).get("used") or {}) == set(hard)

    wait_for(counted, timeout=60, what="the quota controller to count the quota's usage")


def runner_pods(frs: FlowRuns) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = frs.kubectl.json(
        "get", "pods", "-n", frs.namespace, "-l", "app.kubernetes.io/component=runner"
    )["items"]
    return pods


def limit_range(frs: FlowRuns, container: dict[str, Any]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "runners", "namespace": frs.namespace},
        "spec": {"limits": [{"type": "Container", **container}]},
    }
    frs.kubectl("apply", "-f", "-", input=json.dumps(body))


@pytest.mark.parametrize(
    ("refuser", "said"),
    [
        # The default runner sets requests, no limits.
        ("quota", "failed quota: runners: must specify limits.memory"),
        # Its default cpu request (50m) is below the LimitRange's minimum.
        ("limitrange", "minimum cpu usage per Container is 100m"),
    ],
)
def test_a_runner_pod_the_namespace_refuses_fails_the_run_naming_the_refusal(
    start_operator: Any, own_frs: FlowRuns, refuser: str, said: str
) -> None:
    frs = own_frs
    if refuser == "quota":
        quota(frs, {"limits.memory": "1Gi"})
    else:
        limit_range(frs, {"min": {"cpu": "100m"}})
    grace = f"--runner-create-grace={GRACE}"
    operator = start_operator("-n", frs.namespace, f"--default-image={IMAGE}", grace)
    frs.apply("refused", local_spec([task("a", "mark", "refused")]))
    # The grace, the operator's polls and its wait for a late end, on a loaded machine.
    bound = GRACE + 120
    try:
        status = frs.wait_phase("refused", timeout=bound)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{operator.log_text()[-3000:]}") from None
    assert status["phase"] == "Failed", status
    assert {c["type"]: c for c in status["conditions"]}["Stalled"]["reason"] == "RunnerNotCreated"
    message = status["message"]
    assert f"could not be created for {GRACE}s" in message, message
    assert said in message, message  # the API server's words
    assert "runner.resources" in message, message
    assert "--runner-resources" in message, message
    assert runner_pods(frs) == []  # never created
    assert "RunnerNotCreated" in frs.event_reasons("refused")
    wait_for(
        lambda: not frs.kubectl.json("get", "jobs", "-n", frs.namespace)["items"],
        timeout=60,
        what="the runner Job to be deleted",
    )


def test_the_default_runner_resources_satisfy_a_quota_that_requires_requests(
    start_operator: Any, own_frs: FlowRuns
) -> None:
    frs = own_frs
    quota(frs, {"requests.cpu": "1", "requests.memory": "1Gi", "pods": "5"})
    start_operator("-n", frs.namespace, f"--default-image={IMAGE}")
    frs.apply("admitted", local_spec([task("a", "mark", "admitted")]))
    [pod] = wait_for(lambda: runner_pods(frs), timeout=90, what="the runner Pod to be admitted")
    [runner] = pod["spec"]["containers"]
    assert runner["resources"] == DEFAULT_RUNNER_RESOURCES

    def used() -> dict[str, str] | None:
        status = frs.kubectl.json("get", "resourcequota", "runners", "-n", frs.namespace)
        counted: dict[str, str] = status["status"]["used"]
        return counted if counted.get("pods") == "1" else None

    # The API server charges the runner's requests to the quota.
    assert wait_for(used, timeout=60, what="the quota to count the runner") == {
        "pods": "1",
        "requests.cpu": "50m",
        "requests.memory": "256Mi",
    }
    assert frs.status("admitted").get("phase") == "Pending"  # no kubelet: nothing failed it


def test_a_flowruns_own_runner_resources_satisfy_a_quota_the_default_does_not(
    start_operator: Any, own_frs: FlowRuns
) -> None:
    """What a refused run is told to do, for one run: a quota that requires limits.memory (the
    default runner sets none) admits the runner of a FlowRun that gives one."""
    frs = own_frs
    quota(frs, {"limits.memory": "1Gi"})
    start_operator("-n", frs.namespace, f"--default-image={IMAGE}")
    given = {"resources": {"limits": {"memory": "512Mi"}}}
    frs.apply("own", local_spec([task("a", "mark", "own")], runner=given))
    [pod] = wait_for(lambda: runner_pods(frs), timeout=90, what="the runner Pod to be admitted")
    [runner] = pod["spec"]["containers"]
    assert runner["resources"] == {**DEFAULT_RUNNER_RESOURCES, "limits": {"memory": "512Mi"}}
