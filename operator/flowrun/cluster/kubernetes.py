"""Kubernetes provider: an ephemeral dask-kubernetes `DaskCluster`, owned by its FlowRun.

The manifest is built by pure `build_*` functions (testable without a cluster); the edge
(`KubernetesProvider`) creates the DaskCluster itself and then lets dask-kubernetes' `KubeCluster`
connect to it (see `KubernetesProvider.start` for why it does not let `KubeCluster` create it).
The ownerReference makes the garbage collector delete the DaskCluster (and, through the Dask
operator's own ownerReferences, its pods and services) when the FlowRun is deleted, even while
our operator is down. The deterministic name lets a restarted operator connect to it again.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import kr8s
import kr8s.asyncio
from dask_kubernetes.operator import KubeCluster
from dask_kubernetes.operator._objects import DaskCluster
from dask_kubernetes.operator.kubecluster.kubecluster import CreateMode
from tornado.ioloop import IOLoop

from flowrun.cluster import autoscaler, base, diagnosis, kr8s_session, nudge
from flowrun.cluster.labels import build_labels, build_owner_reference

logger = logging.getLogger(__name__)

DASKCLUSTER_API = "kubernetes.dask.org/v1"
DASKCLUSTERS = "daskclusters.kubernetes.dask.org"

NO_IMAGE = (
    "spec.executor.dask.image is not set and the operator has no default image: set "
    "spec.executor.dask.image to a tagged image that contains flowrun and the flow's code "
    "(e.g. the operator's own image), or start the operator with --default-image "
    "(Helm: operator.defaultImage)."
)

NO_CRD = (
    "the API server has no DaskCluster resource: install the dask-kubernetes operator and its "
    "CRDs (Helm: daskOperator.enabled=true)."
)

# Pod Security "restricted", so that the scheduler and workers are admitted where it is enforced
# (shown on the dev node). runAsNonRoot: the image must run as a non-root numeric USER (the
# project's image runs as 10001); an image that runs as root fails to start with the kubelet's
# reason in the FlowRun's message, instead of being refused by admission without a Pod.
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def build_container(
    *, name: str, image: str, command: list[str], options: base.ClusterOptions
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        # Never pull an image that is already on the node (a `:latest` tag would mean Always).
        "imagePullPolicy": "IfNotPresent",
        # `command`, not `args`: the image may have an entrypoint of its own (the operator
        # image's is `flowrun operator`), which `args` would only be appended to.
        "command": command,
        "env": [dict(e) for e in options.env],
        "securityContext": copy.deepcopy(CONTAINER_SECURITY_CONTEXT),
    }
    if options.resources:
        container["resources"] = copy.deepcopy(options.resources)
    return container


ALLOWED_FAILURES = "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"


def build_scheduler_spec(
    cluster: str, *, image: str, options: base.ClusterOptions, labels: dict[str, str]
) -> dict[str, Any]:
    container = build_container(
        name="scheduler",
        image=image,
        # `dask scheduler`, not `dask-scheduler`: distributed 2026.8 ships only the `dask` CLI.
        command=["dask", "scheduler", "--host", "0.0.0.0"],
        options=options,
    )
    # KubeCluster, connecting to an existing DaskCluster, reads the scheduler's `args` (for
    # "--jupyter") and fails when the key is absent; empty args add nothing to `command`.
    container["args"] = []
    # Before the run's own env, which may still override it.
    container["env"] = [*autoscaler.scheduler_env(options.adapt), *container["env"]]
    # A worker lost mid-task fails that task at once (naming the worker; retried as the task's
    # max_retries says), instead of Dask running it again, unseen, on up to 3 more workers
    # (a task over its memory limit would kill each of them in turn). The run's env may differ.
    if not any(e.get("name") == ALLOWED_FAILURES for e in container["env"]):
        container["env"].append({"name": ALLOWED_FAILURES, "value": "0"})
    container["ports"] = [
        {"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
        {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"},
    ]
    container["readinessProbe"] = {
        "httpGet": {"port": "http-dashboard", "path": "/health"},
        "periodSeconds": 1,
        # One probe is one HTTP GET to /health: a scheduler that takes seconds to answer is
        # not ready; the run's startupTimeoutSeconds bounds the wait for readiness as a whole.
        "timeoutSeconds": 5,
    }
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [container]},
        "service": {
            "type": "ClusterIP",
            "selector": {
                "dask.org/cluster-name": cluster,
                "dask.org/component": "scheduler",
            },
            "ports": [
                {"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
                {
                    "name": "http-dashboard",
                    "protocol": "TCP",
                    "port": 8787,
                    "targetPort": "http-dashboard",
                },
            ],
        },
    }


def build_worker_spec(
    *, image: str, options: base.ClusterOptions, labels: dict[str, str]
) -> dict[str, Any]:
    container = build_container(
        name="worker",
        image=image,
        command=[
            "dask",
            "worker",
            "--name",
            "$(DASK_WORKER_NAME)",
            "--nthreads",
            str(options.threads_per_worker),
            "--dashboard",
            "--dashboard-address",
            "8788",
        ],
        options=options,
    )
    container["ports"] = [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}]
    return {
        "replicas": options.workers,
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [container]},
    }


def build_cluster_spec(
    name: str, *, owner: base.Owner, options: base.ClusterOptions, default_image: str | None = None
) -> dict[str, Any]:
    """The whole DaskCluster manifest for one FlowRun.

    >>> owner = base.Owner("flowrun.dev/v1alpha1", "FlowRun", "etl", "ns", "uid-1")
    >>> options = base.ClusterOptions(image="acme/etl:1")
    >>> spec = build_cluster_spec("fr-etl-uid1", owner=owner, options=options)
    >>> spec["metadata"]["ownerReferences"][0]["uid"]
    'uid-1'
    """
    image = options.image or default_image
    if not image:
        raise base.ClusterStartupError("ImageRequired", NO_IMAGE)
    labels = build_labels(owner, options)
    return {
        "apiVersion": DASKCLUSTER_API,
        "kind": "DaskCluster",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [build_owner_reference(owner)],
        },
        "spec": {
            # The Dask operator's own backstop: an idle cluster is deleted even if we never are.
            "idleTimeout": options.idle_timeout,
            "worker": build_worker_spec(image=image, options=options, labels=labels),
            "scheduler": build_scheduler_spec(name, image=image, options=options, labels=labels),
        },
    }


class KubernetesProvider:
    """Starts (or reconnects to) a DaskCluster through dask-kubernetes, deletes it on close."""

    kind = "Kubernetes"
    keeps_results = True

    def __init__(self, *, default_image: str | None = None, delete_timeout: float = 60.0) -> None:
        self._default_image = default_image
        self._delete_timeout = delete_timeout
        self._cluster: Any = None
        self._name: str | None = None
        self._namespace: str | None = None
        self._adaptive = False

    async def start(
        self, name: str, options: base.ClusterOptions, owner: base.Owner
    ) -> base.ClusterHandle:
        """Create the DaskCluster (unless a restarted operator finds it), then connect.

        `KubeCluster` only ever connects (CONNECT_ONLY): when it creates the cluster itself it
        waits for the DaskCluster's `status.phase` to be Running. The dask-kubernetes operator
        (2026.3.0) sets Running when the scheduler Service appears, but its create handler's
        own Pending lands at the same moment and wins; a ClusterIP Service never changes again,
        so on a real node the phase stayed Pending and every start timed out with the Pods
        Running. Connecting waits for what the run needs: the scheduler Pod Ready, its Service,
        a Dask handshake.
        """
        kr8s_session.install()
        self._name, self._namespace = name, owner.namespace
        spec = build_cluster_spec(
            name, owner=owner, options=options, default_image=self._default_image
        )
        try:
            reconnected = not await create_daskcluster(spec)
            # The running loop given explicitly: without it KubeCluster's constructor also
            # makes a `_start()` coroutine it never awaits (a RuntimeWarning per cluster).
            cluster = KubeCluster(
                name=name,
                namespace=owner.namespace,
                create_mode=CreateMode.CONNECT_ONLY,
                asynchronous=True,
                loop=IOLoop.current(),
                quiet=True,
                shutdown_on_close=False,  # we delete by name (close), not its atexit reaper
                resource_timeout=max(1, int(options.startup_timeout)),
            )
            async with _touching(name, owner.namespace):
                await asyncio.wait_for(_started(cluster), timeout=options.startup_timeout)
        except TimeoutError as exc:
            diagnosis = await self._diagnose()
            await self.close()
            raise base.ClusterStartupError(
                "ClusterStartupTimeout",
                f"Dask cluster {name} was not ready within {options.startup_timeout:g}s: "
                f"{diagnosis}",
            ) from exc
        except Exception as exc:
            # Any other startup failure (CrashLoopBackOff, missing CRDs, API errors) is also the
            # cluster's, not the operator's: clean up and report it with the library's words.
            await self.close()
            raise base.ClusterStartupError(
                "ClusterStartupFailed", f"Dask cluster {name} failed to start: {exc}"
            ) from exc
        self._cluster = cluster
        await self._adapt(name, options, owner)
        dashboard = getattr(cluster, "dashboard_link", None)
        return base.ClusterHandle(
            name=name,
            address=str(cluster.scheduler_address),
            dashboard=str(dashboard) if dashboard else None,
            reconnected=reconnected,
        )

    async def _adapt(self, name: str, options: base.ClusterOptions, owner: base.Owner) -> None:
        """Not `KubeCluster.adapt`: that autoscaler has neither our labels nor an owner until
        the dask operator adopts it."""
        manifest = autoscaler.build(name, owner=owner, options=options)
        if manifest is None:
            return
        self._adaptive = True
        try:
            await autoscaler.create(manifest)
        except Exception as exc:
            await self.close()
            raise base.ClusterStartupError(
                "ClusterStartupFailed", f"DaskAutoscaler {name} could not be created: {exc}"
            ) from exc

    async def close(self) -> None:
        """Delete the DaskCluster by name (whatever state the KubeCluster object is in)."""
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            try:
                await asyncio.wait_for(super_close(cluster), timeout=self._delete_timeout)
            except (TimeoutError, OSError) as exc:
                logger.warning("closing the Dask client side of %s failed: %s", self._name, exc)
        if self._name is not None and self._adaptive:
            await autoscaler.delete(self._name, self._namespace or "default")
        if self._name is not None:
            await delete_daskcluster(self._name, self._namespace, timeout=self._delete_timeout)

    async def _diagnose(self) -> str:
        assert self._name is not None
        return await diagnose(self._name, self._namespace)


async def get_all(kind: str, *names: str, **kwargs: Any) -> list[Any]:
    """kr8s' get as a list (an absent name gives an empty list)."""
    return [obj async for obj in kr8s.asyncio.get(kind, *names, **kwargs)]


async def create_daskcluster(manifest: dict[str, Any]) -> bool:
    """Create the DaskCluster; False when it exists (an operator reconnecting to its run's)."""
    try:
        obj = await DaskCluster(manifest)  # kr8s objects get their API client when awaited
        await obj.create()
    except kr8s.ServerError as exc:
        code = exc.response.status_code if exc.response is not None else None
        if code == 409:
            return False
        if code == 404:
            raise RuntimeError(NO_CRD) from exc
        raise
    return True


def _touching(name: str, namespace: str) -> AbstractAsyncContextManager[None]:
    async def read() -> dict[str, Any] | None:
        found = await get_all(DASKCLUSTERS, name, namespace=namespace)
        return dict(found[0].raw) if found else None

    async def patch(body: dict[str, Any]) -> None:
        for obj in await get_all(DASKCLUSTERS, name, namespace=namespace):
            await obj.patch(body)

    errors = (kr8s.ServerError, httpx.HTTPError)
    return nudge.touching(read, patch, what=f"{namespace}/{name}", errors=errors)


async def _started(cluster: Any) -> Any:
    return await cluster


async def super_close(cluster: Any) -> None:
    """Close only the distributed side of a KubeCluster; the resource is deleted by name."""
    cluster.shutdown_on_close = False
    await cluster._close()


async def delete_daskcluster(name: str, namespace: str | None, *, timeout: float) -> None:
    """Delete a DaskCluster and wait (bounded) until the API server no longer has it."""
    found = await get_all(DASKCLUSTERS, name, namespace=namespace)
    for obj in found:
        try:
            await obj.delete(propagation_policy="Background")
        except kr8s.NotFoundError:
            continue
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while found and loop.time() < deadline:
        found = await get_all(DASKCLUSTERS, name, namespace=namespace)
        if found:
            await asyncio.sleep(0.5)


async def diagnose(name: str, namespace: str | None) -> str:
    """Say in words why a DaskCluster is not ready, from what the API server knows."""
    found = await get_all(DASKCLUSTERS, name, namespace=namespace)
    if not found:
        return diagnosis.NOT_FOUND
    phase = found[0].raw.get("status", {}).get("phase")
    if not phase:
        return diagnosis.NEVER_ACTIONED
    pods = await get_all(
        "pods", namespace=namespace, label_selector={"dask.org/cluster-name": name}
    )
    workers = any(pod.labels.get("dask.org/component") == "worker" for pod in pods)
    states = [(pod.name, pod.raw.get("status", {})) for pod in pods]
    return diagnosis.not_ready(phase, states, workers=workers)
