"""A DaskCluster that the dask-kubernetes operator failed to action is touched until it is.

kopf (under the dask operator) handles an object when an event for it arrives; when the write
that ends the DaskCluster's creation handler fails, kopf throttles the object and waits for its
next event, which nobody makes. Here the API server refuses that write (an admission policy,
for this namespace only) until kopf has given up on it, then allows it again: without the
flowrun operator's touch (flowrun.cluster.nudge) the run waits out its startup timeout and
fails; with it, the run succeeds.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from flowrun.cluster import nudge
from flowrun.dev.helmop import HelmOperator
from flowrun.dev.waiting import wait_for
from support.admission import refusal, refusing
from support.flowruns import FlowRuns

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

FIRST_PHASE_REFUSED = (
    "!has(object.status) || !has(object.status.phase) || "
    "(oldObject != null && has(oldObject.status) && has(oldObject.status.phase))"
)
REFUSED = "test fault: first phase refused"


def probe(ns: str) -> dict[str, Any]:
    """A DaskCluster with a first phase, which the policy refuses."""
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {"name": "probe", "namespace": ns},
        "spec": {"worker": {"spec": {"containers": []}}, "scheduler": {"spec": {"containers": []},
                 "service": {"ports": []}}},
        "status": {"phase": "Created"},
    }  # fmt: skip


@pytest.fixture
def frs(node_operator: HelmOperator, restricted_namespace: str, tmp_path: Any) -> FlowRuns:
    return FlowRuns(node_operator.kubectl, restricted_namespace, tmp_path)


def daskcluster(op: HelmOperator, ns: str) -> dict[str, Any] | None:
    items: list[dict[str, Any]] = op.kubectl.json("get", "daskclusters", "-n", ns)["items"]
    return items[0] if items else None


@pytest.mark.timeout(900)
def test_a_daskcluster_its_operator_gave_up_on_is_touched_and_the_run_succeeds(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    op, ns = node_operator, frs.namespace
    name = f"fr-test-refuse-{uuid.uuid4().hex[:6]}"
    policy = refusal(name, ns, resource="daskclusters", operations=["CREATE", "UPDATE"],
                     expression=FIRST_PHASE_REFUSED, message=REFUSED)  # fmt: skip
    with refusing(op, policy, probe(ns), REFUSED):
        spec = {
            "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [2, 3]}]},
            "returnTasks": ["a"],
            "executor": {
                "type": "Dask",
                "dask": {
                    "cluster": "Kubernetes",
                    "image": op.image,
                    "workers": 1,
                    "startupTimeoutSeconds": 240,
                },
            },
        }
        frs.apply("lost", spec)
        found = wait_for(lambda: daskcluster(op, ns), timeout=120, what="the DaskCluster")
        cluster = found["metadata"]["name"]

        def gave_up() -> bool:
            return any("Throttling" in line for line in op.dask_operator_lines(cluster).splitlines()
                       if cluster in line)  # fmt: skip

        try:
            wait_for(gave_up, timeout=120, what=f"the dask operator to give up on {cluster}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{op.diagnosis(ns, cluster)}") from None
    # Nothing writes to the DaskCluster now but the flowrun operator's touch.
    status = frs.wait_phase("lost", "Succeeded", "Failed", timeout=300)
    assert status["phase"] == "Succeeded", f"{status.get('message')}\n{op.diagnosis(ns, cluster)}"
    assert status["results"]["a"] == 5
    assert f"DaskCluster {ns}/{cluster} has no status.phase" in op.operator_logs(tail=-1)
    assert nudge.ANNOTATION in op.operator_logs(tail=-1)
