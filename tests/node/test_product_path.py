"""The product's own path on a real node: the Helm-installed operator runs FlowRuns on Dask
clusters in Pods (the Kubernetes provider, no --allow-in-process), and leaves nothing behind.

The operator, the dask-kubernetes operator, the scheduler and the workers are all Pods of the
locally built image, admitted under Pod Security "restricted"; the kubelet, containerd, CoreDNS and
kube-proxy decide whether they run and reach each other.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowrun.dev.helmop import HelmOperator
from support.flowruns import FlowRuns

pytestmark = [pytest.mark.controlplane, pytest.mark.node]


def kubernetes_executor(image: str, workers: int = 2, **dask: Any) -> dict[str, Any]:
    return {
        "type": "Dask",
        "dask": {"cluster": "Kubernetes", "image": image, "workers": workers, **dask},
    }


def test_a_flowrun_runs_on_scheduler_and_worker_pods_and_leaves_nothing(
    node_operator: HelmOperator, restricted_namespace: str, tmp_path
) -> None:
    ns = restricted_namespace
    frs = FlowRuns(node_operator.kubectl, ns, tmp_path)
    spec = {
        "flow": {
            "tasks": [
                {"name": "inc", "fn": "operator:add", "args": [{"value": [1, 2, 3]}, [4]]},
                {"name": "square", "fn": "operator:pow", "args": [{"task": "inc", "map": True}, 2]},
                {"name": "total", "fn": "builtins:sum", "args": [{"task": "square"}]},
                {"name": "host", "fn": "socket:gethostname"},
            ]
        },
        "returnTasks": ["total", "host"],
        "executor": kubernetes_executor(node_operator.image),
    }
    frs.apply("squares", spec)

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
