"""The in-process Kubernetes provider on a real node: dask-kubernetes' `KubeCluster`, started
by the operator itself (chart value `operator.allowInProcess=true`), not by a runner Pod.

The Helm-installed operator Pod creates the run's DaskCluster through `KubeCluster`, waits for the
scheduler Pod the dask-kubernetes operator Pod makes, connects to it over the scheduler Service
(CoreDNS, kube-proxy) and runs the flow as its Dask client; the tasks run in worker Pods. No
runner Job exists: the flow ran in the operator. An operator Pod deleted mid-run hands the run
over to the next one, which connects to the same DaskCluster again (found by its name).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev import helmop
from flowrun.dev.helmop import HelmOperator
from flowrun.dev.image import project_root
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, kubernetes_executor, squares_spec

pytestmark = [pytest.mark.controlplane, pytest.mark.node]

OPERATOR = "app.kubernetes.io/name=flowrun-operator"


@pytest.fixture(scope="module")
def inprocess_operator(node_operator: HelmOperator) -> HelmOperator:
    """The module's release upgraded as a user would: `--set operator.allowInProcess=true`."""
    op = node_operator
    chart = str(project_root() / "helm" / "flowrun-operator")
    op.helm(
        "upgrade", helmop.RELEASE, chart, "-n", op.namespace, "--reuse-values",
        "--set", "operator.allowInProcess=true", "--wait", "--timeout", "5m",
        timeout=330,
    )  # fmt: skip
    (deployment,) = op.kubectl.json("get", "deployments", "-n", op.namespace, "-l", OPERATOR)[
        "items"
    ]
    name = f"deployment/{deployment['metadata']['name']}"
    assert "--allow-in-process" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    op.kubectl("rollout", "status", name, "-n", op.namespace, "--timeout=180s", timeout=200)
    # The old operator (runner Pods) must be gone before a FlowRun is applied: one Pod left.
    wait_for(lambda: len(op.pods(op.namespace, OPERATOR)) == 1, timeout=120, what="one operator")
    return op


def one_worker(image: str) -> dict[str, Any]:
    # A loaded 2-core machine: the scheduler Pod may take a while to be Ready.
    return kubernetes_executor(image, workers=1, startupTimeoutSeconds=240)


def wait_end(op: HelmOperator, frs: FlowRuns, name: str) -> dict[str, Any]:
    try:
        return frs.wait_phase(name, timeout=360)
    except TimeoutError:
        raise AssertionError(op.diagnosis(frs.namespace)) from None


def test_the_operator_runs_a_flow_on_a_kubecluster_it_started(
    inprocess_operator: HelmOperator, restricted_namespace: str, tmp_path: Path
) -> None:
    op, ns = inprocess_operator, restricted_namespace
    frs = FlowRuns(op.kubectl, ns, tmp_path)
    began = time.monotonic()
    frs.apply("kube", squares_spec(one_worker(op.image)))
    status = wait_end(op, frs, "kube")
    print(f"in-process run on a KubeCluster: {time.monotonic() - began:.1f} s to {status['phase']}")
    assert status["phase"] == "Succeeded", f"{status}\n{op.diagnosis(ns)}"
    assert status["results"]["total"] == 30, status
    # The task ran in a worker Pod of the run's DaskCluster, not in the operator.
    assert status["results"]["host"].startswith("fr-kube-"), status
    assert "worker" in status["results"]["host"], status
    assert status["cluster"]["scheduler"].startswith("tcp://fr-kube-"), status
    # In the operator: no runner Job was made for it.
    jobs = op.kubectl.json("get", "jobs", "-n", ns)["items"]
    assert jobs == [], [j["metadata"]["name"] for j in jobs]
    op.wait_clean(ns)
    reasons = frs.event_reasons("kube")
    assert {"ClusterCreated", "ClusterDeleted"} <= reasons, reasons
    assert "was never awaited" not in op.operator_logs(), op.operator_logs()


def test_a_restarted_operator_connects_to_the_runs_kubecluster_again(
    inprocess_operator: HelmOperator, restricted_namespace: str, tmp_path: Path
) -> None:
    op, ns = inprocess_operator, restricted_namespace
    frs = FlowRuns(op.kubectl, ns, tmp_path)
    spec = {
        "flow": {
            "tasks": [
                # Long enough that the old operator is gone before the flow ends, on a loaded
                # machine (the task is run again if its result went with the old client).
                {"name": "nap", "fn": "time:sleep", "args": [40]},
                {"name": "host", "fn": "socket:gethostname", "upstream": ["nap"]},
            ]
        },
        "returnTasks": ["host"],
        "executor": one_worker(op.image),
    }
    frs.apply("again", spec)
    # Connected and running its flow: the scheduler's address is on the status.
    wait_for(
        lambda: frs.status("again").get("cluster", {}).get("scheduler"),
        timeout=300,
        what="the run's cluster in its status",
    )
    (old,) = op.pods(op.namespace, OPERATOR)
    op.kubectl("delete", "pod", old["metadata"]["name"], "-n", op.namespace, "--wait=false")
    began = time.monotonic()
    status = wait_end(op, frs, "again")
    print(f"operator Pod deleted mid-run: {time.monotonic() - began:.1f} s to {status['phase']}")
    assert status["phase"] == "Succeeded", f"{status}\n{op.diagnosis(ns)}"
    assert status["results"]["host"].startswith("fr-again-"), status
    reasons = frs.event_reasons("again")
    assert {"ClusterCreated", "ClusterReconnected", "ClusterDeleted"} <= reasons, reasons
    op.wait_clean(ns)
