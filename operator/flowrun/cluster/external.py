"""External provider: a Dask scheduler someone else runs, given by address.

Never shut down (it is not ours); only reachability is checked at start, so a wrong address
fails the FlowRun with a clear reason instead of hanging the runner. Published task results
stay on that cluster, which is what lets a restarted operator resume without rerunning.
"""

from __future__ import annotations

import asyncio
from typing import Any

from distributed.core import rpc

from flowrun.cluster import base


class ExternalProvider:
    kind = "External"
    keeps_results = True

    async def start(
        self, name: str, options: base.ClusterOptions, owner: base.Owner
    ) -> base.ClusterHandle:
        if not options.address:
            raise base.ClusterStartupError(
                "InvalidSpec", "spec.executor.dask.address is required for cluster External."
            )
        try:
            make_rpc: Any = rpc
            async with make_rpc(options.address) as scheduler:
                await asyncio.wait_for(scheduler.identity(), timeout=options.startup_timeout)
        except (OSError, TimeoutError) as exc:
            raise base.ClusterStartupError(
                "ClusterUnreachable",
                f"Dask scheduler at {options.address} did not answer within "
                f"{options.startup_timeout:g}s: {exc}",
            ) from exc
        return base.ClusterHandle(name=name, address=options.address, reconnected=True)

    async def close(self) -> None:
        return None
