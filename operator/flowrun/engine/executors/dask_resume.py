"""Resuming from what a DaskExecutor published (`dask_publish`): the finished states a later
client hands to `run_until_finished(task_states=...)`, their results left on the cluster.

A mapped task comes back as its Mapped parent with the children found under its name: each
finished child keeps its result where it is (a child's own future, or its place in a
published batch), so it does not run again; the others run. Only plain values cross from
the workers: what kind of state each published value is, never the value itself.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import distributed

from flowrun.engine import state as states
from flowrun.engine.executors import dask_batches as batches
from flowrun.engine.executors.dask_publish import PICKED
from flowrun.engine.executors.dask_worker import plain

log = logging.getLogger("flowrun.engine")

# A child's own name ends in "[i]", a batch's in "[first-last]".
PART = re.compile(r"\[(\d+)(?:-(\d+))?\]$")


def describe_published(value: Any) -> Any:
    """Runs on a worker: the kind of a published value, as plain data. A batch (a list of
    states) gives each child's state name; a state gives [name, n_map_states]."""
    if isinstance(value, tuple) and value[:1] == (PICKED,):  # one element of a batch
        value = value[1][value[2]]
    if isinstance(value, list):
        return [type(v).__name__ for v in value]
    if isinstance(value, states.State):
        return [type(value).__name__, getattr(value, "n_map_states", -1)]
    return ["Success", -1]  # a bare value (results published by other means)


def _resumable(kind: str) -> type[states.State] | None:
    """The state class of a finished state worth keeping (a cancelled one runs again)."""
    cls = states.BY_NAME.get(kind)
    if cls is None or not issubclass(cls, states.Finished) or issubclass(cls, states.Cancelled):
        return None
    return cls


def _describe(client: Any, futures: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """What each published future holds; a lost or failed one is left out (it runs again)."""
    if not futures:
        return {}
    names = list(futures)
    probes = client.map(describe_published, [futures[n] for n in names], pure=False)
    deadline = time.monotonic() + timeout
    _settle(probes, deadline)
    if len(probes) > 1 and any(p.status == "cancelled" for p in probes):
        # The scheduler cancels a whole graph when one of its inputs is lost (a result
        # cancelled just before it was published): probe those again one by one, so that a
        # lost result hides none of the others.
        probes = [
            client.submit(describe_published, futures[n], pure=False)
            if p.status == "cancelled"
            else p
            for n, p in zip(names, probes, strict=True)
        ]
        _settle(probes, deadline)
    done = [(n, p) for n, p in zip(names, probes, strict=True) if p.status == "finished"]
    for name, probe in zip(names, probes, strict=True):
        if probe.status != "finished":
            log.info("published result %s is not usable (%s): it runs again", name, probe.status)
    values = client.gather([p for _, p in done], errors="skip")
    return {n: v for (n, _), v in zip(done, values, strict=True)}


def _settle(probes: list[Any], deadline: float) -> None:
    while any(p.status == "pending" for p in probes) and time.monotonic() < deadline:
        time.sleep(0.02)  # `distributed.wait` would need a default client: ours is not one


def published_states(
    client: Any, prefix: str, slugs: Iterable[str], *, timeout: float = 30.0
) -> dict[str, states.State]:
    """The finished states of `slugs` published under `prefix` on the client's cluster."""
    names = set(client.list_datasets())
    wholes = {s: client.get_dataset(prefix + s) for s in slugs if prefix + s in names}
    kinds = _describe(client, wholes, timeout)
    out: dict[str, states.State] = {}
    mapped: dict[str, int] = {}
    for slug, (kind, n) in ((s, kinds[s]) for s in wholes if s in kinds):
        if kind == states.Mapped.__name__:
            mapped[slug] = n
            continue
        cls = _resumable(kind)
        if cls is not None:
            out[slug] = cls(result=_result(wholes[slug]))
    parts = {n: client.get_dataset(n) for s in mapped for n in names if _part_of(n, prefix + s)}
    described = _describe(client, parts, timeout)
    for slug, n in mapped.items():
        mine = {k: (parts[k], v) for k, v in described.items() if _part_of(k, prefix + slug)}
        out[slug] = states.Mapped(n_map_states=n, map_states=_children(n, mine))
    return out


def _result(published: Any) -> Any:
    if isinstance(published, tuple) and published[:1] == (PICKED,):
        return batches.Picked(published[1], published[2])
    return published


def _part_of(name: str, whole: str) -> bool:
    return name.startswith(whole + "[") and PART.fullmatch(name[len(whole) :]) is not None


def _children(n: int, parts: Mapping[str, tuple[Any, Any]]) -> list[states.State]:
    """Each child's best published state: a finished one beats one that was not (a child
    re-runs only when it did not finish), then the narrower publication (a later re-run)."""
    best: dict[int, tuple[tuple[bool, int], states.State]] = {}
    for name, (future, kinds) in parts.items():
        match = PART.search(name)
        if match is None:
            continue
        first = int(match.group(1))
        last = int(match.group(2) or first)
        single = match.group(2) is None
        listed = [kinds[0]] if single else kinds
        for offset, kind in enumerate(listed[: last - first + 1]):
            index = first + offset
            cls = _resumable(kind)
            rank = (cls is not None, first - last)
            if index >= n or (index in best and best[index][0] >= rank):
                continue
            result = future if single else batches.Picked(future, offset)
            best[index] = (rank, states.Pending() if cls is None else cls(result=result))
    return [best[i][1] if i in best else states.Pending() for i in range(n)]


def on_children(client: Any, children: Sequence[states.State], fn: Any, **kwargs: Any) -> Any:
    """Submit `fn(values)` where the children's results live: `values` are their final
    states (or values), in order, whether each is a future of its own or in a batch."""
    items = [c.result for c in children]
    return client.submit(_apply, fn, batches.picks_marker(items, _source), pure=False, **kwargs)


def _source(item: Any) -> tuple[Any, int | None, Any]:
    if isinstance(item, batches.Picked):
        return item.future, item.offset, item.future.key
    return item, None, item.key if isinstance(item, distributed.Future) else None


def _apply(fn: Any, marker: Any) -> Any:
    return fn(plain(marker))
