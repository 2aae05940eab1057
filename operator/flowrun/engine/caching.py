"""Where Cached states wait for the next run of a task in this process.

Keyed by the task's `cache_key` (default: its name), as in Prefect 1.x, so the cache is
shared by runs and flows in one process. Only states whose result is a value in this
process are kept: a Dask future dies with its client.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from flowrun.engine import state as states
from flowrun.engine.context import context
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.task import Task


class CacheStore:
    """Cached states by cache key (`{key: [Cached, ...]}`, the shape of Prefect's
    `prefect.context.caches`), kept in `kept` when given."""

    def __init__(self, kept: dict[str, list[states.Cached]] | None = None) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, list[states.Cached]] = {} if kept is None else kept

    def candidates(self, task: Task) -> tuple[states.State, ...]:
        key = task.cache_key or task.name
        now = states.now()
        with self._lock:
            alive = [
                s
                for s in self._states.get(key, ())
                if s.cached_result_expiration is None or s.cached_result_expiration > now
            ]
            self._states[key] = alive
        return tuple(alive)  # oldest first, as Prefect tries them

    def remember(self, flow: FlowBase, records: Mapping[str, states.State], session: Any) -> None:
        for task in flow.sorted_tasks():
            if task.cache_for is None:
                continue
            found = records.get(task.slug or "")
            found_states = found.map_states if isinstance(found, states.Mapped) else (found,)
            for st in found_states:
                if isinstance(st, states.Cached) and session.as_upstream(st) is st:
                    with self._lock:
                        bucket = self._states.setdefault(task.cache_key or task.name, [])
                        if not any(s is st for s in bucket):
                            bucket.append(st)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


class ReadOnlyCache(CacheStore):
    """Reads `source`, keeps nothing: as in Prefect, `FlowRunner.run()` uses the cached
    states `flow.run()` kept, but only `flow.run()` keeps new ones."""

    def __init__(self, source: CacheStore) -> None:
        super().__init__()
        self.source = source

    def candidates(self, task: Task) -> tuple[states.State, ...]:
        return self.source.candidates(task)

    def remember(self, flow: FlowBase, records: Mapping[str, states.State], session: Any) -> None:
        return None


# One store per process: Flow.run uses it unless given another, or `flowrun.context.caches`.
PROCESS_CACHE = CacheStore()


def current() -> CacheStore:
    """The store `flow.run()` uses: the dict at `flowrun.context.caches` when one is set
    there (as Prefect keeps its caches; `context.caches = {}` starts afresh), else the
    process's store."""
    kept = context.get("caches")
    return CacheStore(kept) if isinstance(kept, dict) else PROCESS_CACHE
