"""A FlowRun's DaskCluster on the runner path: created and deleted as a plain Kubernetes object.

Unlike `cluster.kubernetes.KubernetesProvider` (dask-kubernetes' KubeCluster, which opens a Dask
connection to the scheduler), nothing here speaks Dask: the scheduler's image is the FlowRun
author's choice, and whoever talks Dask to it can be made to unpickle its bytes. Readiness is
read from the scheduler Pod's conditions; the runner connects to the scheduler's Service.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from flowrun.api import models
from flowrun.cluster import autoscaler, base, nudge
from flowrun.cluster.kubernetes import build_cluster_spec, diagnose
from flowrun.controller import kubeobjects, workergroup
from flowrun.controller.clusteropts import cluster_options

logger = logging.getLogger(__name__)
POLL = 1.0
SCHEDULER_PORT = 8786


@dataclass(frozen=True)
class Started:
    address: str
    created: bool


def scheduler_address(name: str, namespace: str) -> str:
    """The scheduler's Service, by the name dask-kubernetes gives it, as Pods resolve it.

    >>> scheduler_address("fr-etl-0a1b2c3d", "team-a")
    'tcp://fr-etl-0a1b2c3d-scheduler.team-a.svc:8786'
    """
    return f"tcp://{name}-scheduler.{namespace}.svc:{SCHEDULER_PORT}"


async def start(
    api: Any, spec: models.FlowRunSpec, *, owner: base.Owner, name: str, default_image: str | None
) -> Started:
    options = cluster_options(spec, default_image=default_image)
    manifest = build_cluster_spec(name, owner=owner, options=options, default_image=default_image)
    existing = await kubeobjects.get(api, "DaskCluster", owner.namespace, name)
    created = existing is None and await kubeobjects.create(api, manifest)
    # Next to the DaskCluster, before its scheduler is up: the dask operator skips an
    # autoscaler whose scheduler is not ready yet, and a restart finds it by name (409).
    adapt = autoscaler.build(name, owner=owner, options=options)
    if adapt is not None:
        await kubeobjects.create(api, adapt)
    try:
        async with _touching(api, owner.namespace, name):
            await asyncio.wait_for(
                _ready(api, owner.namespace, name), timeout=options.startup_timeout
            )
    except TimeoutError:
        why = await diagnose(name, owner.namespace)
        raise base.ClusterStartupError(
            "ClusterStartupTimeout",
            f"Dask cluster {name} was not ready within {options.startup_timeout:g}s: {why}",
        ) from None
    return Started(address=scheduler_address(name, owner.namespace), created=created)


def _touching(api: Any, namespace: str, name: str) -> AbstractAsyncContextManager[None]:
    return nudge.touching(
        functools.partial(kubeobjects.get, api, "DaskCluster", namespace, name),
        functools.partial(kubeobjects.merge_patch, api, "DaskCluster", namespace, name),
        what=f"{namespace}/{name}",
        errors=kubeobjects.CALL_ERRORS,
    )


async def _ready(api: Any, namespace: str, name: str) -> None:
    await _scheduler_ready(api, namespace, name)
    await workergroup.wait_made(api, namespace, name)


async def _scheduler_ready(api: Any, namespace: str, name: str) -> None:
    selector = f"dask.org/cluster-name={name},dask.org/component=scheduler"
    while True:
        for pod in await kubeobjects.list_labelled(api, "Pod", namespace, selector):
            conditions = (pod.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                return
        await asyncio.sleep(POLL)


async def delete(api: Any, name: str, namespace: str, *, timeout: float = 60.0) -> bool:
    """Delete the DaskCluster (its DaskAutoscaler first, so nothing scales it meanwhile) and
    wait (bounded) until the API server no longer has it; False when there was none."""
    try:
        await kubeobjects.delete(api, "DaskAutoscaler", namespace, name)
    except kubeobjects.API_ERRORS as exc:
        # The DaskCluster's deletion takes an adopted autoscaler with it: go on with that.
        logger.warning("deleting DaskAutoscaler %s/%s failed: %s", namespace, name, exc)
    if not await kubeobjects.delete(api, "DaskCluster", namespace, name):
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await kubeobjects.get(api, "DaskCluster", namespace, name) is None:
            break
        await asyncio.sleep(0.5)
    return True
