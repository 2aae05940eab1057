"""Batched mapping on DaskExecutor: one Dask task runs a contiguous slice of a mapped
task's children, each through its own TaskRunner (own state, retries, timeout, trigger,
cache and events), so a 100,000-child map costs the scheduler a few hundred tasks.

A batched child's handle is `BatchChild` (its own key for records and events, its batch's
key and its place in it); its finished record holds a `Picked` result. Downstream, Dask
sees only batch futures, inside marker dicts that the worker turns back into children's
states (`dask_worker.plain`): a map of a map consumes upstream batch *i* in its batch *i*
as soon as that one is done (no barrier), and a reduce flattens the batches on a worker.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import distributed

from flowrun.engine import calls
from flowrun.engine.executors.dask_worker import PICK, PICKS, Opaque, run_batch

# Batches per cluster thread when the size is left to us: enough to keep every thread
# busy and to even out children of uneven length; and at most this many children a batch.
BATCHES_PER_THREAD = 8
MAX_BATCH = 1000
# Future statuses whose result will never come.
GONE = ("cancelled", "error", "lost")


@dataclasses.dataclass(frozen=True)
class BatchChild:
    """A mapped child submitted inside a batch: element `offset` of batch `batch`."""

    key: str
    batch: str
    offset: int


@dataclasses.dataclass(frozen=True)
class Picked:
    """A batched child's result where it lives: element `offset` of a batch's value."""

    future: Any
    offset: int


def batch_size(n: int, threads: int, forced: int | None) -> int:
    """How many children one Dask task runs: `forced` if given, else 1 for a map too
    small to gain from batches, growing with the map's length up to MAX_BATCH."""
    if forced is not None:
        return max(1, int(forced))
    return max(1, min(MAX_BATCH, math.ceil(n / (max(1, threads) * BATCHES_PER_THREAD))))


def chunks(indices: Sequence[int], size: int) -> list[range]:
    """Positions of `indices` cut into batches of at most `size` whose map indices run
    without a gap, so that a batch published as `slug[first-last]` holds exactly those
    children (children re-run after a resume or a retry need not be contiguous)."""
    out: list[range] = []
    start = 0
    for j in range(1, len(indices) + 1):
        if j == len(indices) or j - start == size or indices[j] != indices[j - 1] + 1:
            out.append(range(start, j))
            start = j
    return out


def pick_marker(future: Any, offset: int) -> dict[str, Any]:
    return {PICK: offset, "batch": future}


def picks_marker(items: Sequence[Any], source_of: Any) -> dict[str, Any]:
    """One marker for a list of children: each picked from its batch or taken whole.

    `source_of(item)` gives (source for Dask, offset or None, dedup key or None).
    """
    sources: list[Any] = []
    index: dict[Any, int] = {}
    picks: list[tuple[int, int | None]] = []
    for item in items:
        source, offset, dedup = source_of(item)
        at = index.get(dedup) if dedup is not None else None
        if at is None:
            at = len(sources)
            sources.append(source)
            if dedup is not None:
                index[dedup] = at
        picks.append((at, offset))
    return {PICKS: Opaque(picks), "sources": sources}


def is_batched(item: Any) -> bool:
    return isinstance(item, BatchChild | Picked)


def child_specs(prepared: Sequence[tuple[calls.TaskCall, Any, Any]]) -> Opaque:
    return Opaque([(c.map_index, c.key, c.slice_here, s) for c, s, _ in prepared])


def fetch_children(client: Any, children: Sequence[Any]) -> dict[int, Any]:
    """The children's results by index, in one gather (not a round trip each): a
    future's value, or a child's state picked out of its batch's value."""
    wanted: dict[Any, Any] = {}
    for child in children:
        held = child.result.future if isinstance(child.result, Picked) else child.result
        # Not only "finished": a child's final event can come before its future's status.
        if isinstance(held, distributed.Future) and held.status not in GONE:
            wanted[held.key] = held
    try:
        values = dict(zip(wanted, client.gather(list(wanted.values())), strict=True))
    except Exception:  # one was lost meanwhile: fetch the others one by one
        values = {k: f.result() for k, f in wanted.items() if f.status not in GONE}
    fetched: dict[int, Any] = {}
    for i, child in enumerate(children):
        result = child.result
        if isinstance(result, Picked) and result.future.key in values:
            fetched[i] = values[result.future.key][result.offset]
        elif isinstance(result, distributed.Future) and result.key in values:
            fetched[i] = values[result.key]
    return fetched


def submit(
    session: Any,
    base: Any,
    prepared: Sequence[tuple[calls.TaskCall, Any, Any]],
    inputs: Sequence[tuple[list[Any], list[Any]]],
    size: int,
) -> list[Any]:
    """Submit `prepared` children in batches of `size` on `session` (a DaskSession);
    return a BatchChild handle per child."""
    slug = prepared[0][0].task.slug or prepared[0][0].task.name
    keys: list[str] = []
    specs, ups, reds, results = [], [], [], []
    handles: list[Any] = []
    for chunk in chunks([p[0].map_index or 0 for p in prepared], size):
        session.counter += 1
        first, last = prepared[chunk[0]][0].map_index, prepared[chunk[-1]][0].map_index
        # The range (a child's index) last: Dask learns task durations per key prefix (the key
        # up to its first non-word part), for its adaptive target and work stealing; with it
        # first (`slow[3]-...`), each batch and child was a prefix of its own, never learned.
        key = f"{slug}-{session.token}-{session.counter}[{first}-{last}]"
        keys.append(key)
        session.track_batch(key, f"{slug}[{first}-{last}]", [prepared[j][0].key for j in chunk])
        specs.append(child_specs([prepared[j] for j in chunk]))
        ups.append([session._arg(inputs[j][0]) for j in chunk])
        reds.append([session._arg(inputs[j][1]) for j in chunk])
        results.append([prepared[j][2] for j in chunk])
        handles.extend(
            BatchChild(prepared[j][0].key or "", key, offset) for offset, j in enumerate(chunk)
        )
    # Later maps first: a downstream batch runs as soon as its inputs are there, so a
    # map of a map is pipelined instead of finishing the upstream map first.
    session.map_priority += 1
    prefix = session.publisher.prefix
    futures = session.client.map(
        run_batch,
        [base] * len(keys),
        specs,
        ups,
        reds,
        results,
        key=keys,
        pure=False,
        priority=session.map_priority,
        publish_as=None if prefix is None else prefix + slug,
    )
    for future in futures:
        session.futures[future.key] = future
    return handles
