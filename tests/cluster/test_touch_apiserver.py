"""The in-process provider touches a DaskCluster that no dask operator actions (none runs
here), as the runner path does (tests/node/test_unactioned_cluster.py shows why it matters),
and still ends by its startup timeout, deleting the DaskCluster."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import dask_kubernetes
import kr8s.asyncio
import pytest

from flowrun.cluster import base, kr8s_session, nudge
from flowrun.cluster.kubernetes import DASKCLUSTERS, KubernetesProvider
from flowrun.dev.waiting import wait_for
from support.flowruns import crd_established

pytestmark = pytest.mark.controlplane

CRD = (
    Path(dask_kubernetes.__file__).parent
    / "operator/deployment/helm/dask-kubernetes-operator/crds/daskcluster.yaml"
)


async def touched_while_waiting(owner: base.Owner) -> tuple[str | None, str]:
    kr8s_session.install()
    provider = KubernetesProvider(delete_timeout=10)
    options = base.ClusterOptions(image="registry.invalid/etl:1", startup_timeout=6)
    start = asyncio.create_task(provider.start("fr-touch-1", options, owner))
    seen: str | None = None
    while not start.done():
        async for obj in kr8s.asyncio.get(DASKCLUSTERS, "fr-touch-1", namespace=owner.namespace):
            seen = seen or obj.raw["metadata"].get("annotations", {}).get(nudge.ANNOTATION)
        await asyncio.sleep(0.2)
    with pytest.raises(base.ClusterStartupError) as failed:
        await start
    return seen, str(failed.value)


def test_an_unactioned_daskcluster_is_touched_until_the_startup_timeout(
    kubectl: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubectl("apply", "--server-side", "-f", str(CRD))
    wait_for(lambda: crd_established(kubectl, DASKCLUSTERS))
    monkeypatch.setattr(nudge, "EVERY", 1.0)
    kubectl("create", "configmap", "run", "-n", namespace)
    uid = kubectl.json("get", "configmap", "run", "-n", namespace)["metadata"]["uid"]
    owner = base.Owner("v1", "ConfigMap", "run", namespace, uid)
    seen, message = asyncio.run(touched_while_waiting(owner))
    assert seen, "the DaskCluster was never touched"
    assert "was not ready within 6s: the DaskCluster was never actioned" in message
    remaining = kubectl.json("get", "daskclusters", "-n", namespace)["items"]
    assert remaining == []
