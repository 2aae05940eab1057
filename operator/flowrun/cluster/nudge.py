"""Touching a DaskCluster that its operator has not actioned, so that operator looks again.

The dask-kubernetes operator runs on kopf, which handles an object when a watch event for it
arrives. When the write that ends its creation handler fails (kopf retries an overloaded API
server for about a minute, a refusal not at all), kopf throttles the object and then waits for
that object's next event. Nobody else writes to a new DaskCluster, so none comes: it stays
without `status.phase`, no scheduler is made, and the run waits out its startup timeout (one
of 20 FlowRuns at once on a loaded CI machine did). An annotation's change is such an event,
and kopf, finding the creation not handled yet, runs it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

# Seconds without `status.phase` before each touch: the dask operator sets it within a second
# when it is well, and a touch while it is merely slow only queues one more event for it.
EVERY = 15.0
ANNOTATION = "flowrun.dev/touched-at"

Read = Callable[[], Awaitable["dict[str, Any] | None"]]
Patch = Callable[["dict[str, Any]"], Awaitable[Any]]


def unactioned(daskcluster: dict[str, Any] | None) -> bool:
    """
    >>> unactioned({"metadata": {"name": "c"}}), unactioned({"status": {"phase": "Created"}})
    (True, False)
    >>> unactioned(None)
    False
    """
    return daskcluster is not None and not (daskcluster.get("status") or {}).get("phase")


def touch() -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"metadata": {"annotations": {ANNOTATION: now}}}


async def keep_touching(
    read: Read,
    patch: Patch,
    *,
    what: str,
    errors: tuple[type[Exception], ...],
    every: float = EVERY,
) -> None:
    """Until the DaskCluster has a phase (or is gone): touch it every `every` seconds. A failed
    read or touch is logged and tried again; it never fails the run."""
    while True:
        await asyncio.sleep(every)
        try:
            found = await read()
            if not unactioned(found):
                return
            await patch(touch())
        except errors as exc:
            logger.warning("DaskCluster %s has no status.phase; touching it failed: %s", what, exc)
            continue
        logger.warning(
            "DaskCluster %s has no status.phase after %gs: touched it (annotation %s) so that "
            "the dask-kubernetes operator handles it again",
            what,
            every,
            ANNOTATION,
        )


@contextlib.asynccontextmanager
async def touching(
    read: Read, patch: Patch, *, what: str, errors: tuple[type[Exception], ...]
) -> AsyncIterator[None]:
    """Run `keep_touching` beside the body (the wait for the cluster), and stop it after."""
    task = asyncio.create_task(keep_touching(read, patch, what=what, errors=errors, every=EVERY))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
