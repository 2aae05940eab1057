"""The DaskAutoscaler of an adaptive cluster against a real kube-apiserver (no dask operator):
the in-process provider's create (idempotent for a reconnecting operator) and delete by name."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import dask_kubernetes
import pytest

from flowrun.cluster import autoscaler, base, kr8s_session
from flowrun.dev.waiting import wait_for
from support.flowruns import crd_established

pytestmark = pytest.mark.controlplane

CRD = (
    Path(dask_kubernetes.__file__).parent
    / "operator/deployment/helm/dask-kubernetes-operator/crds/daskautoscaler.yaml"
)


def autoscalers(kubectl: Any, namespace: str) -> list[dict[str, Any]]:
    out = kubectl("get", "daskautoscalers", "-n", namespace, "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def test_created_once_labelled_and_owned_then_deleted_by_name(kubectl: Any, namespace: str) -> None:
    kubectl("apply", "--server-side", "-f", str(CRD))
    wait_for(lambda: crd_established(kubectl, "daskautoscalers.kubernetes.dask.org"))
    # Any object can own it here; in the operator it is the FlowRun.
    kubectl("create", "configmap", "run", "-n", namespace)
    uid = kubectl.json("get", "configmap", "run", "-n", namespace)["metadata"]["uid"]
    owner = base.Owner("v1", "ConfigMap", "run", namespace, uid)
    options = base.ClusterOptions(image="registry.invalid/etl:1", adapt=(0, 2))
    manifest = autoscaler.build("fr-run-1", owner=owner, options=options)
    assert manifest is not None

    async def create_twice() -> list[bool]:
        kr8s_session.install()
        return [await autoscaler.create(manifest), await autoscaler.create(manifest)]

    assert asyncio.run(create_twice()) == [True, False]
    (found,) = autoscalers(kubectl, namespace)
    assert found["spec"] == {"cluster": "fr-run-1", "minimum": 0, "maximum": 2}
    assert found["metadata"]["ownerReferences"][0]["uid"] == uid
    assert found["metadata"]["labels"]["flowrun.dev/flowrun-uid"] == uid

    async def delete_twice() -> None:
        await autoscaler.delete("fr-run-1", namespace)
        await autoscaler.delete("fr-run-1", namespace)  # gone already: not an error

    asyncio.run(delete_twice())
    wait_for(lambda: not autoscalers(kubectl, namespace), what="the DaskAutoscaler deleted")
