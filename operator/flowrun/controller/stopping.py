"""Why a run must stop: deletion, operator exit, `spec.cancel`, or the deadline.

kopf tells a daemon about deletion and operator exit through its `stopped` flag; `spec.cancel`
and the deadline are read from the live body kopf keeps up to date. `Stop.wait()` polls those
cheaply (no API calls) and returns the first reason that holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import kopf

from flowrun.runs.outcome import CANCEL_REQUESTED, DEADLINE_EXCEEDED, DELETED, OPERATOR_EXITING

T = TypeVar("T")
logger = logging.getLogger(__name__)

__all__ = ["CANCEL_REQUESTED", "DEADLINE_EXCEEDED", "DELETED", "OPERATOR_EXITING", "Stop",
           "Stopped"]  # fmt: skip


class Stopped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stop:
    def __init__(self, *, stopped: Any, body: Mapping[str, Any], poll: float = 0.2) -> None:
        self._stopped = stopped
        self._body = body
        self._poll = poll
        self.deadline_at: float | None = None  # epoch seconds

    def reason(self) -> str | None:
        if self._stopped:
            why = getattr(self._stopped, "reason", None)
            if why is not None and why & kopf.DaemonStoppingReason.RESOURCE_DELETED:
                return DELETED
            return OPERATOR_EXITING
        if self._body.get("metadata", {}).get("deletionTimestamp"):
            return DELETED
        if (self._body.get("spec") or {}).get("cancel"):
            return CANCEL_REQUESTED
        if self.deadline_at is not None and time.time() >= self.deadline_at:
            return DEADLINE_EXCEEDED
        return None

    async def wait(self) -> str:
        while True:
            why = self.reason()
            if why is not None:
                return why
            await asyncio.sleep(self._poll)

    async def race(self, work: Awaitable[T]) -> T:
        """Await `work` unless a stop reason comes first (then `work` is cancelled)."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the work's own failure no longer matters: we are stopping
            logger.debug("work interrupted by %s failed: %s", waiter.result(), exc)
        raise Stopped(waiter.result())
