"""Faults on the product's own path, each decided by the real kubelet, containerd and Dask: a
worker or the scheduler Pod deleted mid-task, an image that cannot be pulled, a container that
crash-loops at start, a worker over its memory limit, 20 FlowRuns at once. Every run ends
(never hangs), says why, and leaves no DaskCluster, Pod or Service of its cluster behind.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from flowrun.dev.helmop import DASK_CLUSTER_LABEL, HelmOperator
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

# Long enough to be hit mid-task on a loaded machine; printed host names tell who ran it.
SLOW_HOSTNAME = {"name": "slow", "fn": "subprocess:getoutput", "args": ["sleep 25; hostname"]}


def executor(image: str, workers: int = 2, **dask: Any) -> dict[str, Any]:
    return {
        "type": "Dask",
        "dask": {"cluster": "Kubernetes", "image": image, "workers": workers, **dask},
    }


@pytest.fixture
def frs(node_operator: HelmOperator, restricted_namespace: str, tmp_path) -> FlowRuns:
    return FlowRuns(node_operator.kubectl, restricted_namespace, tmp_path)


def ended(frs: FlowRuns, op: HelmOperator, name: str, timeout: float = 300) -> dict[str, Any]:
    try:
        return frs.wait_phase(name, timeout=timeout)
    except TimeoutError:
        raise AssertionError(op.diagnosis(frs.namespace)) from None


def component_pods(op: HelmOperator, ns: str, component: str) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in op.pods(ns, f"{DASK_CLUSTER_LABEL},dask.org/component={component}")
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def when_running(frs: FlowRuns, name: str, task: str) -> Callable[[], bool]:
    def check() -> bool:
        return frs.status(name).get("tasks", {}).get(task, {}).get("state") == "Running"

    return check


def delete_workers_mid_task(op: HelmOperator, frs: FlowRuns, name: str) -> list[str]:
    wait_for(when_running(frs, name, "slow"), timeout=240, what="task slow Running")
    victims = component_pods(op, frs.namespace, "worker")
    assert victims
    op.kubectl("delete", "pod", "-n", frs.namespace, *victims, "--wait=false")
    return victims


def test_worker_pods_deleted_mid_task_the_task_is_retried(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    """The scheduler fails the task at once (allowed-failures 0); its max_retries runs it again
    on a worker Pod that replaced the deleted ones. The retry waits a few seconds: a retry at
    once may land on the other deleted worker while it is still closing, and fail again (on
    CI it did: a second loss spends the one retry, as Prefect's max_retries means)."""
    op, ns = node_operator, frs.namespace
    spec = {
        "flow": {"tasks": [{**SLOW_HOSTNAME, "maxRetries": 1, "retryDelaySeconds": 10}]},
        "returnTasks": ["slow"],
        "executor": executor(op.image),
    }
    frs.apply("fault", spec)
    victims = delete_workers_mid_task(op, frs, "fault")
    status = ended(frs, op, "fault")
    assert status["phase"] == "Succeeded", (status.get("tasks"), op.diagnosis(ns))
    assert status["results"]["slow"] not in victims, status
    assert status["tasks"]["slow"]["runCount"] == 2, status
    retried = [e["message"] for e in frs.events("fault") if e["reason"] == "TaskFailed"]
    assert not retried, retried  # a retry is not a failure
    op.wait_clean(ns)


def test_worker_pods_deleted_mid_task_without_retries_fail_it_naming_the_worker(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    op, ns = node_operator, frs.namespace
    spec = {"flow": {"tasks": [SLOW_HOSTNAME]}, "executor": executor(op.image)}
    frs.apply("fault", spec)
    victims = delete_workers_mid_task(op, frs, "fault")
    status = ended(frs, op, "fault")
    assert status["phase"] == "Failed", status
    slow = status["tasks"]["slow"]
    assert slow["state"] == "Failed", status
    assert slow["runCount"] == 1, status
    # Its nanny said it was stopping (SIGTERM from the kubelet). The worker's name is its
    # Deployment's (dask-kubernetes scales by it): the prefix of the deleted Pod's name.
    assert "was lost while running the task: its nanny was stopped" in slow["message"], slow
    named = re.search(r"Dask worker (\S+) \(", slow["message"])
    assert named is not None, slow
    assert any(pod.startswith(f"{named[1]}-") for pod in victims), (victims, slow)
    op.wait_clean(ns)


def test_scheduler_pod_deleted_mid_run_ends_failed_saying_so(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    op, ns = node_operator, frs.namespace
    spec = {"flow": {"tasks": [SLOW_HOSTNAME]}, "executor": executor(op.image, workers=1)}
    frs.apply("fault", spec)
    wait_for(when_running(frs, "fault", "slow"), timeout=240, what="task slow Running")
    [scheduler] = component_pods(op, ns, "scheduler")
    op.kubectl("delete", "pod", "-n", ns, scheduler, "--wait=false")
    status = ended(frs, op, "fault")
    assert status["phase"] == "Failed", status
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["reason"] == "SchedulerLost", status
    assert "Dask scheduler" in status["message"]
    assert "was lost mid-run" in status["message"]
    slow = status["tasks"]["slow"]
    assert slow["state"] == "Failed", status
    assert "scheduler" in slow["message"], status
    op.wait_clean(ns)


def test_an_image_that_cannot_be_pulled_fails_within_the_startup_timeout(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    op, ns = node_operator, frs.namespace
    image = "localhost/flowrun/does-not-exist:1"
    spec = {
        "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [1, 2]}]},
        "executor": executor(image, workers=1, startupTimeoutSeconds=30),
    }
    frs.apply("fault", spec)
    status = ended(frs, op, "fault", timeout=180)
    assert status["phase"] == "Failed", status
    message = status["message"]
    assert any(r in message for r in ("ErrImagePull", "ImagePullBackOff")), message
    op.wait_clean(ns)


def test_a_container_that_crash_loops_at_start_fails_with_the_pods_reason(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    """A memory limit no Dask process fits in: the scheduler is OOMKilled at every start."""
    op, ns = node_operator, frs.namespace
    tiny = {"limits": {"memory": "24Mi"}, "requests": {"memory": "24Mi"}}
    spec = {
        "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [1, 2]}]},
        "executor": executor(op.image, workers=1, resources=tiny, startupTimeoutSeconds=40),
    }
    frs.apply("fault", spec)
    status = ended(frs, op, "fault", timeout=200)
    assert status["phase"] == "Failed", status
    message = status["message"]
    assert any(r in message for r in ("CrashLoopBackOff", "OOMKilled")), message
    op.wait_clean(ns)


def test_a_worker_over_its_memory_limit_fails_the_task_oomkilled(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    """The kernel kills the worker process (not the container: its nanny lives on and starts
    another), so the kubelet says nothing; the nanny saw the cgroup's OOM kill and said so."""
    op, ns = node_operator, frs.namespace
    limit = {"limits": {"memory": "400Mi"}, "requests": {"memory": "200Mi"}}
    hog = {"name": "hog", "fn": "operator:mul", "args": ["x", 1_500_000_000]}
    spec = {
        "flow": {"tasks": [hog]},
        "executor": executor(op.image, workers=1, resources=limit),
    }
    frs.apply("fault", spec)
    status = ended(frs, op, "fault", timeout=400)
    assert status["phase"] == "Failed", status
    hog_status = status["tasks"]["hog"]
    assert hog_status["state"] == "Failed", status
    message = hog_status["message"]
    assert "was OOMKilled while running the task" in message, hog_status
    assert "(400 MiB)" in message, hog_status
    # Named, and its Pod (the same Pod lives on: only its worker process was killed).
    worker = f"{status['cluster']['name']}-default-worker-"
    assert re.search(rf"Dask worker {worker}\S+ \(tcp://\S+ on {worker}\S+\)", message), message
    op.wait_clean(ns)


# 60 Pods of Python (a scheduler, a worker and a runner per run) on 2 cores: on a loaded CI
# machine this took longer than the suite's 10-minute default. One deadline for all runs, and
# below this timeout, so that a run that never ends fails with the namespace's diagnosis.
@pytest.mark.timeout(1800)
def test_twenty_flowruns_at_once_all_finish_and_leave_no_pod(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    """More runs than the chart's maxConcurrentRuns (16): the rest wait Pending, then run."""
    op, ns = node_operator, frs.namespace
    names = [f"many-{i}" for i in range(20)]
    for i, name in enumerate(names):
        spec = {
            "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [i, 1]}]},
            "returnTasks": ["a"],
            "executor": executor(op.image, workers=1, startupTimeoutSeconds=900),
        }
        frs.apply(name, spec)
    deadline = time.monotonic() + 1400
    finals = {name: ended(frs, op, name, timeout=deadline - time.monotonic()) for name in names}
    unsuccessful = {n: (s["phase"], s.get("message")) for n, s in finals.items()
                    if s["phase"] != "Succeeded"}  # fmt: skip
    clusters = [f"fr-{n}-" for n in unsuccessful]  # DaskCluster names: fr-<run>-<hash>
    assert not unsuccessful, f"{unsuccessful}\n{op.diagnosis(ns, *clusters)}"
    assert [s["results"]["a"] for s in finals.values()] == [i + 1 for i in range(20)]
    op.wait_clean(ns, timeout=300)
    runners = op.pods(ns, "flowrun.dev/runner")
    assert runners == [], [p["metadata"]["name"] for p in runners]
