"""A DaskCluster's default worker group, made again when the dask operator dropped it.

The dask-kubernetes operator makes the default DaskWorkerGroup last in the handler that runs on
`status.phase: Created`; the scheduler Service's status handler sets `Running` on its own. When
the group's creation fails on a loaded API server, kopf's retry of that handler no longer
matches (the phase is past `Created`): the cluster runs with a scheduler and no group, and a
runner waits for workers that never come (one of 20 FlowRuns at once in CI did). A group made
but never scaled (its creation handler throttled) waits for its next event the same way. So the
start of a cluster also waits for the group's first worker Pod to exist (not to be ready: an
unschedulable worker is the Pods' story) and, past `nudge.EVERY` without it, makes the group as
the dask operator would have or touches it so that its handler runs again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from flowrun.cluster import nudge
from flowrun.controller import kubeobjects

logger = logging.getLogger(__name__)
POLL = 1.0
# Copied onto the group as the dask operator copies them: the DaskCluster's labels and
# annotations, but not kopf's bookkeeping or kubectl's last-applied copy.
_NOT_COPIED = ("kopf.zalando.org", "kubectl.kubernetes.io")


def default_name(cluster: str) -> str:
    return f"{cluster}-default"


def default_group(daskcluster: dict[str, Any]) -> dict[str, Any]:
    """The DaskWorkerGroup the dask operator makes for `daskcluster` (its
    `build_default_worker_group_spec`; importing it would register the dask operator's kopf
    handlers in this process).

    >>> cluster = {"metadata": {"name": "c", "namespace": "ns", "labels": {"team": "a"},
    ...     "annotations": {"kopf.zalando.org/last-handled-configuration": "{}"}},
    ...     "spec": {"worker": {"replicas": 1, "spec": {"containers": []}}}}
    >>> group = default_group(cluster)
    >>> meta = group["metadata"]
    >>> meta["name"], meta["annotations"]
    ('c-default', {})
    >>> meta["labels"]
    {'team': 'a', 'dask.org/cluster-name': 'c', 'dask.org/component': 'workergroup'}
    >>> group["spec"]
    {'cluster': 'c', 'worker': {'replicas': 1, 'spec': {'containers': []}}}
    """
    meta, worker = daskcluster["metadata"], daskcluster["spec"].get("worker") or {}
    name = meta["name"]
    worker_meta = worker.get("metadata") or {}
    labels = _copied(meta.get("labels")) | (worker_meta.get("labels") or {})
    annotations = _copied(meta.get("annotations")) | (worker_meta.get("annotations") or {})
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskWorkerGroup",
        "metadata": {
            "name": default_name(name),
            "namespace": meta["namespace"],
            "labels": labels | {"dask.org/cluster-name": name, "dask.org/component": "workergroup"},
            "annotations": annotations,
        },
        "spec": {"cluster": name, "worker": worker},
    }


def _copied(values: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (values or {}).items() if not k.startswith(_NOT_COPIED)}


async def wait_made(api: Any, namespace: str, name: str, *, every: float = nudge.EVERY) -> None:
    """Until the default group asks for no worker or has a worker Pod; past each `every`
    seconds without that, make or touch the group (`_step`). A failed call is logged and tried
    again; the caller's startup timeout bounds the whole."""
    loop = asyncio.get_running_loop()
    next_step = loop.time() + every
    while True:
        try:
            if await _made(api, namespace, name):
                return
            if loop.time() >= next_step:
                next_step = loop.time() + every
                await _step(api, namespace, name)
        except kubeobjects.CALL_ERRORS as exc:
            logger.warning("worker group of DaskCluster %s/%s: %s", namespace, name, exc)
        await asyncio.sleep(POLL)


async def _made(api: Any, namespace: str, name: str) -> bool:
    group = await kubeobjects.get(api, "DaskWorkerGroup", namespace, default_name(name))
    if group is None:
        return False
    if not (group["spec"].get("worker") or {}).get("replicas"):
        return True  # an adaptive cluster's group may start at none
    selector = f"dask.org/workergroup-name={default_name(name)},dask.org/component=worker"
    return bool(await kubeobjects.list_labelled(api, "Pod", namespace, selector))


async def _step(api: Any, namespace: str, name: str) -> None:
    cluster = await kubeobjects.get(api, "DaskCluster", namespace, name)
    phase = ((cluster or {}).get("status") or {}).get("phase")
    if cluster is None or phase in (None, "Created"):
        return  # not made yet, or the dask operator's handler is still to run (nudge.touching)
    group = await kubeobjects.get(api, "DaskWorkerGroup", namespace, default_name(name))
    if group is None:
        await kubeobjects.create(api, default_group(cluster))
        logger.warning(
            "DaskCluster %s/%s is %s without its worker group: made %s as the dask operator "
            "would have",
            namespace,
            name,
            phase,
            default_name(name),
        )
        return
    group_name = default_name(name)
    await kubeobjects.merge_patch(api, "DaskWorkerGroup", namespace, group_name, nudge.touch())
    logger.warning(
        "worker group %s/%s has no worker Pod: touched it (annotation %s) so that the dask "
        "operator scales it again",
        namespace,
        group_name,
        nudge.ANNOTATION,
    )
