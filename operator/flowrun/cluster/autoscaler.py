"""Adaptive workers on cluster Kubernetes: a dask-kubernetes `DaskAutoscaler` next to the cluster.

The dask-kubernetes operator acts on it every 5 s (a kopf timer): it asks the scheduler for its
adaptive target over the dashboard's HTTP API (`GET /api/v1/adaptive_target`, through the
`<cluster>-scheduler` Service's `http-dashboard` port), bounds it by `minimum` and `maximum`,
scales the cluster's default DaskWorkerGroup (down by at most a quarter of its workers at a
time, retiring them through `POST /api/v1/retire_workers`, so their results move first), and
then rests 15 s. Both the interval and that cooldown are fixed in its code, not settings.

Distributed serves that API only when `distributed.http.scheduler.api` is among the scheduler's
HTTP routes, which it is not by default; when the API answers 404 the dask operator falls back
to Dask's RPC, i.e. it becomes a Dask client of the FlowRun's scheduler. So a cluster with
`adapt` gets the route through the scheduler's environment (`scheduler_env`).

The DaskAutoscaler is named after the cluster (as `KubeCluster.adapt` names it), labelled and
owned like the DaskCluster; the dask operator re-parents it to the DaskCluster when it sees it.
Each run path deletes it before its DaskCluster, so nothing scales a cluster being deleted.
"""

from __future__ import annotations

import contextlib
from typing import Any

import kr8s
from dask_kubernetes.operator._objects import DaskAutoscaler

from flowrun.cluster import base
from flowrun.cluster.labels import build_labels, build_owner_reference

AUTOSCALER_API = "kubernetes.dask.org/v1"

# distributed's default scheduler routes, plus the HTTP API the autoscaler reads.
SCHEDULER_ROUTES = [
    "distributed.http.scheduler.prometheus",
    "distributed.http.scheduler.info",
    "distributed.http.scheduler.json",
    "distributed.http.health",
    "distributed.http.proxy",
    "distributed.http.statics",
    "distributed.http.scheduler.api",
]


def scheduler_env(adapt: tuple[int, int] | None) -> list[dict[str, str]]:
    """The scheduler's environment for `adapt` (dask parses a list-valued variable as Python).

    >>> scheduler_env(None)
    []
    >>> scheduler_env((1, 3))[0]["name"]
    'DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES'
    """
    if adapt is None:
        return []
    return [{"name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES", "value": repr(SCHEDULER_ROUTES)}]


def build_autoscaler(
    name: str,
    *,
    namespace: str,
    adapt: tuple[int, int],
    labels: dict[str, str],
    owner_reference: dict[str, Any],
) -> dict[str, Any]:
    """The DaskAutoscaler for the DaskCluster `name`.

    >>> a = build_autoscaler("fr-x-1", namespace="ns", adapt=(1, 3), labels={}, owner_reference={})
    >>> a["kind"], a["spec"]
    ('DaskAutoscaler', {'cluster': 'fr-x-1', 'minimum': 1, 'maximum': 3})
    """
    minimum, maximum = adapt
    return {
        "apiVersion": AUTOSCALER_API,
        "kind": "DaskAutoscaler",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, "dask.org/cluster-name": name, "dask.org/component": "autoscaler"},
            "ownerReferences": [dict(owner_reference)],
        },
        "spec": {"cluster": name, "minimum": minimum, "maximum": maximum},
    }


def build(name: str, *, owner: base.Owner, options: base.ClusterOptions) -> dict[str, Any] | None:
    """The cluster's DaskAutoscaler, labelled and owned like its DaskCluster; None without adapt."""
    if options.adapt is None:
        return None
    return build_autoscaler(
        name,
        namespace=owner.namespace,
        adapt=options.adapt,
        labels=build_labels(owner, options),
        owner_reference=build_owner_reference(owner),
    )


async def create(manifest: dict[str, Any]) -> bool:
    """Create the DaskAutoscaler with dask-kubernetes' own kr8s class (the in-process provider);
    False when it exists (an operator reconnecting to its run's cluster)."""
    try:
        obj = await DaskAutoscaler(manifest)  # kr8s objects get their API client when awaited
        await obj.create()
    except kr8s.ServerError as exc:
        if exc.response is not None and exc.response.status_code == 409:
            return False
        raise
    return True


async def delete(name: str, namespace: str) -> None:
    """Delete the DaskAutoscaler `name` if there is one (by name: no list, no get)."""
    metadata = {"name": name, "namespace": namespace}
    obj = await DaskAutoscaler(
        {"apiVersion": AUTOSCALER_API, "kind": "DaskAutoscaler", "metadata": metadata}
    )
    with contextlib.suppress(kr8s.NotFoundError):
        await obj.delete(propagation_policy="Background")
