"""The Kubernetes Dask provider on a control plane without a kubelet: the DaskCluster it creates
is named deterministically and owned by the FlowRun; the garbage collector deletes it with the
FlowRun; when no pod can run, the FlowRun fails after startupTimeoutSeconds saying why, and
leaves nothing behind. (The dask-kubernetes operator is not running: nothing ever acts on the
DaskCluster, just as when no pod can be scheduled.)"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import dask_kubernetes
import pytest

from flowrun import cluster
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, crd_established

pytestmark = pytest.mark.controlplane

DASK_CRDS = (
    Path(dask_kubernetes.__file__).parent / "operator/deployment/helm/dask-kubernetes-operator/crds"
)


@pytest.fixture(scope="module")
def dask_crds(kubectl: Any) -> None:
    for crd in sorted(DASK_CRDS.glob("*.yaml")):
        kubectl("apply", "--server-side", "-f", str(crd))
    wait_for(lambda: crd_established(kubectl, "daskclusters.kubernetes.dask.org"), what="Dask CRDs")


def k8s_spec(timeout: int) -> dict[str, Any]:
    return {
        "flow": {"tasks": [{"name": "a", "fn": "frtasks:add", "args": [1, 2]}]},
        "executor": {
            "type": "Dask",
            "dask": {
                "cluster": "Kubernetes",
                "image": "registry.invalid/etl:1",
                "workers": 2,
                "startupTimeoutSeconds": timeout,
            },
        },
    }


def daskclusters(kubectl: Any, namespace: str) -> list[dict[str, Any]]:
    out = kubectl("get", "daskclusters", "-n", namespace, "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def runner_jobs(kubectl: Any, namespace: str) -> list[dict[str, Any]]:
    out = kubectl("get", "jobs", "-n", namespace, "-o", "json")
    return [j for j in json.loads(out.stdout)["items"] if j["metadata"]["name"].endswith("-runner")]


def test_owned_cluster_then_startup_timeout_leaves_nothing(
    dask_crds: None, start_operator: Any, own_frs: FlowRuns, kubectl: Any
) -> None:
    frs = own_frs
    start_operator("-n", frs.namespace)
    frs.apply("k8s", k8s_spec(timeout=8))
    (cluster,) = wait_for(lambda: daskclusters(kubectl, frs.namespace), what="DaskCluster")
    flowrun = frs.get("k8s")
    assert flowrun is not None
    (owner,) = cluster["metadata"]["ownerReferences"]
    assert owner["uid"] == flowrun["metadata"]["uid"]
    assert owner["kind"] == "FlowRun"
    assert owner["controller"] is True
    assert cluster["metadata"]["name"].startswith("fr-k8s-")
    assert cluster["spec"]["worker"]["replicas"] == 2
    assert cluster["spec"]["worker"]["spec"]["containers"][0]["image"] == "registry.invalid/etl:1"
    # The runner starts beside the cluster, not once its scheduler is Ready (it never is here):
    # the runner waits for the scheduler's address in status, which the operator never wrote.
    wait_for(lambda: runner_jobs(kubectl, frs.namespace), what="the runner Job")
    assert "scheduler" not in (frs.status("k8s").get("cluster") or {})

    status = frs.wait_phase("k8s", timeout=120)
    assert status["phase"] == "Failed"
    assert "was not ready within 8s" in status["message"]
    assert "no scheduler or worker pod could start" in status["message"]
    stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
    assert stalled["reason"] == "ClusterStartupTimeout"
    wait_for(lambda: not daskclusters(kubectl, frs.namespace), what="DaskCluster deleted")
    wait_for(lambda: not runner_jobs(kubectl, frs.namespace), what="runner Job deleted")
    assert {"ClusterStartupTimeout", "ClusterDeleted"} <= frs.event_reasons("k8s")


def test_garbage_collector_deletes_the_cluster_with_its_flowrun(
    dask_crds: None, start_operator: Any, own_frs: FlowRuns, kubectl: Any
) -> None:
    frs = own_frs
    operator = start_operator("-n", frs.namespace)
    frs.apply("owned", k8s_spec(timeout=600))
    wait_for(lambda: daskclusters(kubectl, frs.namespace), what="DaskCluster")
    # No operator to clean up: only the ownerReference can remove the DaskCluster now.
    operator.kill()
    kubectl(
        "patch", "flowrun", "owned", "-n", frs.namespace, "--type=merge",
        "-p", json.dumps({"metadata": {"finalizers": None}}),
    )  # fmt: skip
    kubectl("delete", "flowrun", "owned", "-n", frs.namespace, "--wait=true")
    # The garbage collector rediscovers new resource types every 30 s: allow for that.
    wait_for(
        lambda: not daskclusters(kubectl, frs.namespace),
        timeout=120,
        interval=1,
        what="DaskCluster garbage-collected",
    )


# A name whose 63rd character is '-': a label value cut to 63 characters ended in '-', and the
# API server refused the DaskCluster.
DASH_AT_63 = "a" * 62 + "-tail"
HOSTILE_NAMES = [DASH_AT_63, "b" * 62 + ".c", "x" * 253, "d." * 126 + "e", "f" * 63, "g" * 64]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: f"len{len(n)}")
def test_the_daskcluster_of_any_flowrun_name_is_valid(
    dask_crds: None, kubectl: Any, namespace: str, name: str
) -> None:
    owner = cluster.Owner("flowrun.dev/v1alpha1", "FlowRun", name, namespace, str(uuid.uuid4()))
    options = cluster.ClusterOptions(image="registry.invalid/etl:1")
    spec = cluster.build_cluster_spec(cluster.cluster_name(owner), owner=owner, options=options)
    result = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(spec), check=False)
    assert result.returncode == 0, result.stderr


def test_a_flowrun_named_with_a_dash_at_63_gets_its_daskcluster(
    dask_crds: None, start_operator: Any, own_frs: FlowRuns, kubectl: Any
) -> None:
    frs = own_frs
    start_operator("-n", frs.namespace)
    frs.apply(DASH_AT_63, k8s_spec(timeout=600))
    (found,) = wait_for(lambda: daskclusters(kubectl, frs.namespace), what="DaskCluster")
    labels = found["metadata"]["labels"]
    flowrun = frs.get(DASH_AT_63)
    assert flowrun is not None
    assert labels["flowrun.dev/flowrun-uid"] == flowrun["metadata"]["uid"]
    assert labels["flowrun.dev/flowrun"].startswith("a" * 40)
    assert (flowrun.get("status") or {}).get("phase") != "Failed"


def test_no_image_anywhere_fails_at_once_saying_what_to_set(
    dask_crds: None, start_operator: Any, own_frs: FlowRuns, kubectl: Any
) -> None:
    """There is no usable public default image here (and `:latest` means pull Always)."""
    frs = own_frs
    start_operator("-n", frs.namespace)
    spec = k8s_spec(timeout=600)
    del spec["executor"]["dask"]["image"]
    frs.apply("no-image", spec)
    status = frs.wait_phase("no-image", timeout=120)
    assert status["phase"] == "Failed"
    assert "spec.executor.dask.image is not set" in status["message"]
    assert {c["type"]: c for c in status["conditions"]}["Stalled"]["reason"] == "ImageRequired"
    assert daskclusters(kubectl, frs.namespace) == []
