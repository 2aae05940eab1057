"""The product's own path on a real node: the Helm-installed operator runs FlowRuns on Dask
clusters in Pods (the Kubernetes provider, no --allow-in-process), and leaves nothing behind.

The operator, the dask-kubernetes operator, the scheduler and the workers are all Pods of the
locally built image, admitted under Pod Security "restricted"; the kubelet, containerd, CoreDNS and
kube-proxy decide whether they run and reach each other.
"""

from __future__ import annotations

import pytest

from flowrun.dev.helmop import HelmOperator
from support.flowruns import FlowRuns, kubernetes_executor, squares_spec

pytestmark = [pytest.mark.controlplane, pytest.mark.node]


def test_a_flowrun_runs_on_scheduler_and_worker_pods_and_leaves_nothing(
    node_operator: HelmOperator, restricted_namespace: str, tmp_path
) -> None:
    ns = restricted_namespace
    frs = FlowRuns(node_operator.kubectl, ns, tmp_path)
    frs.apply("squares", squares_spec(kubernetes_executor(node_operator.image)))

    try:
        status = frs.wait_phase("squares", timeout=180)
    except TimeoutError:
        raise AssertionError(node_operator.diagnosis(ns)) from None
    assert status["phase"] == "Succeeded", node_operator.diagnosis(ns)
    results = status.get("results", {})
    assert results.get("total") == 30, status
    # The task ran in a worker Pod: its hostname is a Pod's name, not the operator's.
    assert results["host"].startswith("fr-squares-"), results
    assert "worker" in results["host"]
    node_operator.wait_clean(ns)
    reasons = frs.event_reasons("squares")
    assert {"ClusterCreated", "ClusterDeleted"} <= reasons, reasons
