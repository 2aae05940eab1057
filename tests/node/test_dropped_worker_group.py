"""A DaskCluster whose worker group the dask-kubernetes operator failed to make still runs.

The dask operator makes the default DaskWorkerGroup last in its handler for `status.phase:
Created`, while the scheduler Service's handler sets `Running` on its own. Here the API server
refuses DaskWorkerGroups in this namespace (an admission policy) until the cluster is Running
with its group refused; the dask operator's retry of that handler then no longer matches the
phase, and a runner would wait for workers for ever. The flowrun operator's start waits for the
group's first worker Pod and makes the group itself (flowrun.controller.workergroup).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from flowrun.controller import workergroup
from flowrun.dev.helmop import HelmOperator
from flowrun.dev.waiting import wait_for
from support.admission import refusal, refusing
from support.flowruns import FlowRuns

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

REFUSED = "test fault: worker group refused"


def probe(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskWorkerGroup",
        "metadata": {"name": "probe", "namespace": ns},
        "spec": {"cluster": "probe", "worker": {"spec": {"containers": []}}},
    }


@pytest.fixture
def frs(node_operator: HelmOperator, restricted_namespace: str, tmp_path: Any) -> FlowRuns:
    return FlowRuns(node_operator.kubectl, restricted_namespace, tmp_path)


def running_without_group(op: HelmOperator, ns: str) -> str:
    """The DaskCluster's name once it is Running and the dask operator was refused its group."""
    items: list[dict[str, Any]] = op.kubectl.json("get", "daskclusters", "-n", ns)["items"]
    if not items or (items[0].get("status") or {}).get("phase") != "Running":
        return ""
    name: str = items[0]["metadata"]["name"]
    return name if REFUSED in op.dask_operator_lines(name, REFUSED) else ""


@pytest.mark.timeout(900)
def test_a_running_daskcluster_without_its_worker_group_gets_one_and_the_run_succeeds(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    op, ns = node_operator, frs.namespace
    name = f"fr-test-nogroup-{uuid.uuid4().hex[:6]}"
    policy = refusal(name, ns, resource="daskworkergroups", operations=["CREATE"],
                     expression="false", message=REFUSED)  # fmt: skip
    with refusing(op, policy, probe(ns), REFUSED):
        spec = {
            "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [2, 3]}]},
            "returnTasks": ["a"],
            "executor": {
                "type": "Dask",
                "dask": {"cluster": "Kubernetes", "image": op.image, "workers": 1,
                         "startupTimeoutSeconds": 300},
            },
        }  # fmt: skip
        frs.apply("nogroup", spec)
        try:
            cluster = wait_for(lambda: running_without_group(op, ns), timeout=180,
                               what="a Running DaskCluster whose group was refused")  # fmt: skip
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{op.diagnosis(ns)}") from None
    status = frs.wait_phase("nogroup", "Succeeded", "Failed", timeout=300)
    assert status["phase"] == "Succeeded", f"{status.get('message')}\n{op.diagnosis(ns, cluster)}"
    assert status["results"]["a"] == 5
    made = f"made {workergroup.default_name(cluster)} as the dask operator would have"
    assert made in op.operator_logs(tail=-1), op.diagnosis(ns, cluster)
