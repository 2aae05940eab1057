"""Local provider: a `distributed.LocalCluster` inside the operator process.

For `flowrun run`, the demo and tests. User code then runs in the operator's own process, so
the controller only allows it with `--allow-in-process`. Threads by default (cheap: a hundred
concurrent runs stay within one process); worker processes on request, which lets a cancel stop
a running task for real. The cluster lives and dies with this process: after an operator
restart it is recreated empty, so finished tasks whose results a later task needs must run again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import distributed

from flowrun.cluster import base


class LocalProvider:
    kind = "Local"
    in_process = True
    keeps_results = False

    def __init__(self, *, processes: bool = False) -> None:
        self._processes = processes
        self._cluster: Any = None

    async def start(
        self, name: str, options: base.ClusterOptions, owner: base.Owner
    ) -> base.ClusterHandle:
        # The synchronous LocalCluster runs its own event loop thread, so a busy scheduler or
        # worker never competes with kopf's loop (watch streams, other FlowRuns' daemons).
        self._cluster = await asyncio.to_thread(self._make, name, options)
        return base.ClusterHandle(
            name=name,
            address=str(self._cluster.scheduler_address),
            dashboard=None,
        )

    def _make(self, name: str, options: base.ClusterOptions) -> Any:
        # distributed is untyped; `Any` keeps mypy strict elsewhere.
        local_cluster: Any = distributed.LocalCluster
        return local_cluster(
            name=name,
            n_workers=max(1, options.workers),
            threads_per_worker=options.threads_per_worker,
            processes=self._processes,
            # No dashboard: it is not reachable for users anyway, and importing it from many
            # concurrently starting clusters races; the HTTP server itself takes a free port.
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            scheduler_port=0,
            silence_logs=True,
        )

    async def close(self) -> None:
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            await asyncio.to_thread(cluster.close, timeout=30)
