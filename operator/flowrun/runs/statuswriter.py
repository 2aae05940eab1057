"""Batched, rate-bounded status patches for one FlowRun.

Task state changes arrive far faster than the API server should be patched (a 1,000-way map
emits thousands of events a second). The writer merges every update into one pending JSON merge
patch and sends it at most once per `interval`; updates that arrive while a patch is in flight
wait for the next one. A failed patch is merged back *under* newer updates and retried with
backoff, so nothing is lost and nothing old overwrites something new. One patch is in flight at a
time, and none is ever abandoned in flight (the server may apply it late, after a newer one). The
daemon calls `close` at the end of a run, which flushes the final phase before it returns.

Every patch passes the run's `Masker` on its way out (secret values never reach the server), and
a patch the API server refuses (400/422) is sent again field by field: the phase, message and
conditions always land, so a run is never left without its end because of one bad field.

A big inline flow's routine patches go to a small companion object instead, and its FlowRun gets
them at most every `refresh` seconds and with every other change (`set_live`,
`flowrun.runs.companion`); each write of its FlowRun is followed by the companion's, with the
run's whole task map when it changed (`set_task_map`).

Only one event loop touches a writer (the operator's daemon, or a runner Pod's); a runner
thread hands events over with `loop.call_soon_threadsafe(writer.update, fragment)`. The writer
knows Kubernetes only through its `StatusSink` (the front end's API client), so the run service
uses it wherever it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from flowrun.runs import companion
from flowrun.runs.secrets import Masker

logger = logging.getLogger(__name__)

MAX_BACKOFF = 10.0
# After a patch, wait at least PACE times as long as it took: a patch of a FlowRun with a big
# inline flow costs the API server seconds (it reprocesses the whole object, spec included, on
# every status write: benchmarks/status_writes.py), and one run's status must not keep it busy
# more than 1/(PACE+1) of the time. Small runs (milliseconds a patch) keep `interval`.
PACE = 4.0
# What a run's end needs: sent together first when a whole patch was refused.
CORE_FIELDS = ("phase", "reason", "message", "conditions", "observedGeneration", "startTime",
               "completionTime")  # fmt: skip


class StatusGone(Exception):
    """The object no longer exists (deleted): nothing more to write."""


class StatusRejected(Exception):
    """The API server refused the patch itself (400/422): retrying cannot help."""


class StatusSink(Protocol):
    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None: ...


class Counter(Protocol):
    def inc(self) -> None: ...


class WriterMetrics(Protocol):
    """What the writer counts (the operator's Prometheus counters fit)."""

    @property
    def status_patches(self) -> Counter: ...

    @property
    def status_patch_failures(self) -> Counter: ...


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-merge-patch composition: `update` wins; nested mappings merge; None deletes later.

    >>> deep_merge({"tasks": {"a": {"state": "Running"}}}, {"tasks": {"b": {"state": "Pending"}}})
    {'tasks': {'a': {'state': 'Running'}, 'b': {'state': 'Pending'}}}
    """
    out = dict(base)
    for key, value in update.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


class StatusWriter:
    """Use as `async with StatusWriter(...) as writer: writer.update({...})`."""

    def __init__(
        self,
        sink: StatusSink,
        *,
        namespace: str,
        name: str,
        interval: float = 1.0,
        metrics: WriterMetrics | None = None,
    ) -> None:
        self._sink = sink
        self._namespace = namespace
        self._name = name
        self._interval = interval
        self._metrics = metrics
        self._pending: dict[str, Any] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._gone = False
        # One patch in flight at a time (the loop's or a flush's): merge patches that overtake
        # each other would let an older value overwrite a newer one.
        self._sending = asyncio.Lock()
        self._source: Callable[[], Mapping[str, Any]] | None = None
        self._mask = Masker()
        self.patches_sent = 0
        self.bytes_sent = 0
        self.last_send_seconds = 0.0
        # A big run's companion (set_live): routine patches go there, and are owed to the FlowRun.
        self._live: companion.LiveSink | None = None
        self._owed: dict[str, Any] = {}
        self._live_state: dict[str, Any] = {}  # every live key as merged so far
        self._flowrun_at = -math.inf  # loop time of the last FlowRun write
        self._refresh = companion.REFRESH
        self._task_map: Callable[[], Mapping[str, Any]] | None = None
        self._map_sent: dict[str, str] = {}  # the companion's TASK_MAP keys as last written
        self.live_patches_sent = 0

    async def __aenter__(self) -> StatusWriter:
        self._task = asyncio.create_task(self._loop(), name=f"status:{self._name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def set_source(self, source: Callable[[], Mapping[str, Any]]) -> None:
        """A fragment computed at send time (rendering once per patch, not once per event)."""
        self._source = source

    def set_live(self, live: companion.LiveSink, refresh: float = companion.REFRESH) -> None:
        """A big run: routine patches go to `live`; the FlowRun gets them at most every
        `refresh` seconds, with any other change, and on every flush."""
        self._live, self._refresh = live, refresh

    @property
    def live(self) -> bool:
        """Routine patches go to a companion (not given up)."""
        return self._live is not None

    def set_task_map(self, source: Callable[[], Mapping[str, Any]]) -> None:
        """The run's whole task map (`render.task_map`), for the companion: computed and, when
        it changed, written after each write of the FlowRun (whose own map is lean)."""
        self._task_map = source

    def set_masker(self, masker: Masker) -> None:
        """The run's secret values, known once its plan is built: masked in every patch."""
        self._mask = masker

    def touch(self) -> None:
        """The source has something new: send it with the next patch."""
        if not self._gone:
            self._dirty.set()

    def update(self, fragment: Mapping[str, Any]) -> None:
        """Merge a status fragment into the next patch (never blocks, never raises)."""
        if self._gone or not fragment:
            return
        self._pending = deep_merge(self._pending, fragment)
        self._dirty.set()

    async def flush(self, *, attempts: int = 20) -> bool:
        """Send what is pending now, retrying; True when everything reached the server.

        May run beside the writer's own loop (sends never overlap): the daemon flushes what
        must be on the server before the run goes on."""
        for attempt in range(attempts):
            async with self._sending:  # a patch in flight lands (or comes back) first
                idle = not self._pending and not self._dirty.is_set() and not self._owed
                if idle or self._gone:
                    return True
                sent = await self._send_pending(to_flowrun=True)
            if not sent:
                await asyncio.sleep(min(MAX_BACKOFF, 0.2 * 2**attempt))
        return not self._pending and not self._owed

    async def close(self) -> None:
        if self._task is not None:
            # Never cancel a patch in flight: the server may still apply it after the final
            # patch and undo the run's end (a run that failed within milliseconds stayed
            # Pending that way). The loop is stopped between two sends.
            async with self._sending:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not await self.flush():
            logger.error("status of %s/%s could not be written", self._namespace, self._name)

    async def _loop(self) -> None:
        failures = 0
        while not self._gone:
            await self._work()
            if await self._send_once():
                failures = 0
                await asyncio.sleep(max(self._interval, PACE * self.last_send_seconds))
            else:
                failures += 1
                await asyncio.sleep(min(MAX_BACKOFF, self._interval * 2**failures))

    async def _work(self) -> None:
        """Until there is something new, or routine progress the FlowRun is owed has waited a
        refresh: a big run whose tasks stop finishing (one long task) still gets it, and its
        companion the whole task map, at the refresh, not only at the next change."""
        if not self._owed:
            await self._dirty.wait()
            return
        due = self._flowrun_at + self._refresh - asyncio.get_running_loop().time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._dirty.wait(), timeout=max(0.0, due))

    async def _send_once(self) -> bool:
        async with self._sending:
            return await self._send_pending()

    async def _send_pending(self, *, to_flowrun: bool = False) -> bool:
        patch, self._pending = self._pending, {}
        if self._source is not None:
            # The source is always the newest word on its keys: a patch that failed or was
            # interrupted (merged back into pending) must never override it.
            patch = deep_merge(patch, self._source())
        self._dirty.clear()
        patch = self._mask.value(patch)
        clock = asyncio.get_running_loop().time
        recent = clock() - self._flowrun_at < self._refresh
        if self._live is not None and not to_flowrun and recent and companion.routine(patch):
            self._owed = deep_merge(self._owed, patch)
            started = clock()
            await self._send_live(patch)
            self.last_send_seconds = clock() - started  # the pace of the companion's writes
            return True
        patch, self._owed = deep_merge(self._owed, patch), {}
        if not patch:
            return True
        started = clock()
        try:
            await self._sink.patch_status(self._namespace, self._name, {"status": patch})
            self.last_send_seconds = clock() - started
            self._flowrun_at = clock()
        except asyncio.CancelledError:
            # close() interrupted this send: keep the patch for the final flush (sending a
            # merge patch twice is harmless; losing it is not).
            self._pending = deep_merge(patch, self._pending)
            raise
        except StatusGone:
            self._gone = True
            self._pending = {}
            return True
        except StatusRejected as exc:
            # A patch the server refuses: say so, and save what can be saved field by field.
            logger.error("status patch of %s/%s rejected: %s", self._namespace, self._name, exc)
            self._count_failure()
            return await self._salvage(patch)
        except Exception as exc:  # any API trouble is retried; newer updates win
            logger.warning("status patch of %s/%s failed: %s", self._namespace, self._name, exc)
            self._count_failure()
            self._pending = deep_merge(patch, self._pending)
            self._dirty.set()
            return False
        self.patches_sent += 1
        self.bytes_sent += len(json.dumps(patch))
        if self._metrics is not None:
            self._metrics.status_patches.inc()
        if self._live is not None:  # the companion follows every FlowRun write (the end too)
            await self._send_live(patch, with_map=True)
        return True

    def _changed_map(self) -> dict[str, str]:
        if self._task_map is None:
            return {}
        data = companion.task_map_data(self._mask.value(self._task_map()))
        return {k: v for k, v in data.items() if self._map_sent.get(k) != v}

    async def _send_live(self, patch: Mapping[str, Any], *, with_map: bool = False) -> None:
        """Best effort: a companion that cannot be written is given up, and the FlowRun gets
        everything again (what the companion got is owed to it in any case)."""
        touched = {k: patch[k] for k in companion.LIVE if k in patch}
        self._live_state = deep_merge(self._live_state, touched)
        data = companion.live_data(patch, self._live_state)
        task_map = self._changed_map() if with_map else {}
        if not (data or task_map) or self._live is None:
            return
        try:
            await self._live.patch_live({**data, **task_map})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("live status of %s/%s not written, the FlowRun gets it all: %s",
                           self._namespace, self._name, exc)  # fmt: skip
            self._live = None
            # Readers go by statusConfigMap to the whole map, which the FlowRun holds again.
            self._pending = deep_merge(self._pending, {"statusConfigMap": None})
            self._dirty.set()
            return
        self._map_sent.update(task_map)
        self.live_patches_sent += 1

    async def _salvage(self, patch: Mapping[str, Any]) -> bool:
        """Send a refused patch again in parts (the run's end first); drop only what is refused.

        False (retry later) only when the server could not be reached for the end itself.
        """
        core = {k: patch[k] for k in CORE_FIELDS if k in patch}
        parts = [core] if core else []
        parts += [{k: v} for k, v in patch.items() if k not in CORE_FIELDS]
        refused: list[str] = []
        for part in parts:
            try:
                await self._sink.patch_status(self._namespace, self._name, {"status": part})
            except StatusGone:
                self._gone = True
                return True
            except StatusRejected:
                refused += list(part)
            except Exception:  # unreachable now: keep the rest for the next attempt
                self._pending = deep_merge(part, self._pending)
                self._dirty.set()
            else:
                self.patches_sent += 1
        if "phase" in refused:  # cannot happen with our own fields; never leave a run endless
            await self._send_minimal(patch)
        if refused:
            logger.error("status of %s/%s: dropped refused fields %s", self._namespace,
                         self._name, sorted(refused))  # fmt: skip
        return True

    async def _send_minimal(self, patch: Mapping[str, Any]) -> None:
        minimal = {
            "phase": patch["phase"],
            "message": "The full status of this run could not be written (the API server "
            "refused it); see the operator's log.",
            "conditions": patch.get("conditions"),
        }
        with contextlib.suppress(Exception):
            await self._sink.patch_status(self._namespace, self._name, {"status": minimal})

    def _count_failure(self) -> None:
        if self._metrics is not None:
            self._metrics.status_patch_failures.inc()
