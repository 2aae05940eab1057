"""Local provider: a `distributed.LocalCluster` inside the operator process.

For `flowrun run`, the demo and tests. User code then runs in the operator's own process, so
the controller only allows it with `--allow-in-process`. Threads by default (cheap: a hundred
concurrent runs stay within one process); worker processes on request, which lets a cancel stop
a running task for real. The cluster lives and dies with this process: after an operator
restart it is recreated empty, so finished tasks whose results a later task needs must run again.

Start is bounded by `startupTimeoutSeconds` like every provider's: a cluster not up in time fails
the run (and is closed when its construction finally returns), instead of leaving it Pending.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import distributed

from flowrun.cluster import base


class LocalProvider:
    kind = "Local"
    keeps_results = False

    def __init__(self, *, processes: bool = False) -> None:
        self._processes = processes
        self._cluster: Any = None

    async def start(
        self, name: str, options: base.ClusterOptions, owner: base.Owner
    ) -> base.ClusterHandle:
        # The synchronous LocalCluster runs its own event loop thread, so a busy scheduler or
        # worker never competes with kopf's loop (watch streams, other FlowRuns' daemons).
        making = asyncio.ensure_future(asyncio.to_thread(self._make, name, options))
        try:
            self._cluster = await asyncio.wait_for(
                asyncio.shield(making), timeout=options.startup_timeout
            )
        except TimeoutError as exc:
            # The thread cannot be interrupted: close what it builds once it returns.
            making.add_done_callback(_close_when_built)
            raise base.ClusterStartupError(
                "ClusterStartupTimeout",
                f"Local Dask cluster {name} with {options.workers} workers was not ready "
                f"within {options.startup_timeout:g}s (spec.executor.dask.startupTimeoutSeconds).",
            ) from exc
        return base.ClusterHandle(
            name=name,
            address=str(self._cluster.scheduler_address),
            dashboard=None,
        )

    def _make(self, name: str, options: base.ClusterOptions) -> Any:
        # distributed is untyped; `Any` keeps mypy strict elsewhere.
        local_cluster: Any = distributed.LocalCluster
        cluster = local_cluster(
            name=name,
            n_workers=max(1, options.workers),
            threads_per_worker=options.threads_per_worker,
            processes=self._processes,
            # Threaded workers share this process: each would compare the whole process' memory
            # with its 1/n share of the machine and pause (forever, with many workers). Only
            # worker processes get a memory limit.
            memory_limit="auto" if self._processes else 0,
            # No dashboard: it is not reachable for users anyway, and importing it from many
            # concurrently starting clusters races; the HTTP server itself takes a free port.
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            scheduler_port=0,
            silence_logs=True,
        )
        if options.adapt is not None:
            # distributed's Adaptive, on the cluster's own loop: the scheduler's adaptive
            # target, bounded, every second (what the dask operator's autoscaler does in Pods).
            cluster.adapt(minimum=options.adapt[0], maximum=options.adapt[1])
        return cluster

    async def close(self) -> None:
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            await asyncio.to_thread(cluster.close, timeout=30)


def _close_when_built(making: asyncio.Future[Any]) -> None:
    if making.cancelled() or making.exception() is not None:
        return
    # Off the event loop: closing a LocalCluster blocks on its own loop thread.
    threading.Thread(target=making.result().close, kwargs={"timeout": 30}, daemon=True).start()
