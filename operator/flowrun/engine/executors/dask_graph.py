"""The Dask graph of one sweep of submissions (`DaskSession.flush`).

Every call becomes one Dask task, except two shapes that need no parallelism of their own:
a linear chain (`fusion.linear_segments`) runs as one Dask task that hands out each call's
result as an item task, and siblings (calls that wait for exactly the same keys, as the
branches of a fan-out; `fusion.sibling_groups`) run in batches, one Dask task per batch,
each call's result a place in its batch's result (a pick marker downstream, as a mapped
child's). Every call keeps its own TaskRunner, events and final record either way.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Set
from typing import Any

import distributed
from dask._task_spec import Task, TaskRef, parse_input

from flowrun.engine.executors import dask_batches as batches
from flowrun.engine.executors import fusion
from flowrun.engine.executors.dask_worker import Opaque, run_on_worker, run_segment, run_siblings

# Shortest chain worth fusing: a fused chain still takes two hops (the chain, then the
# task that hands out each call's own result), so two calls would gain nothing.
MIN_FUSED = 3


@dataclasses.dataclass
class Built:
    graph: dict[str, Task] = dataclasses.field(default_factory=dict)
    wanted: dict[str, str] = dataclasses.field(default_factory=dict)  # key -> graph key
    siblings: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)


def build(
    unsent: Mapping[str, tuple[Any, ...]],
    fusable: Set[str],
    new_name: Callable[[str], str],
    batch_size: Callable[[int], int],
) -> Built:
    """The graph for `unsent` (key -> (call, state, upstream, reduced, state_result))."""
    deps = {key: dependencies(*args[2:]) for key, args in unsent.items()}
    out = Built()
    # What stands for a key in the graph when it is not a task of its own: a fused call's
    # item of its segment's result (renamed, so the scheduler's duration estimates per task
    # name stay those of real runs), or a sibling's place in its batch's result.
    alias: dict[str, Any] = {}
    joined: list[tuple[str, Any, list[str]]] = []
    for segment in fusion.linear_segments(deps, fusable):
        if len(segment) >= MIN_FUSED:
            fused = new_name("fused")
            for i, key in enumerate(segment):
                item = out.wanted[key] = f"fused-{key}"
                alias[key] = TaskRef(item)
                out.graph[item] = Task(item, operator.getitem, TaskRef(fused), i)
            joined.append((fused, run_segment, segment))
    loose = [k for k in unsent if k in fusable and k not in alias and _groupable(unsent[k])]
    for group in fusion.sibling_groups(deps, loose, batch_size):
        batch = new_name("siblings")
        for offset, key in enumerate(group):
            alias[key] = batches.pick_marker(TaskRef(batch), offset)
            out.wanted[key] = batch
            out.siblings[key] = (batch, offset)
        joined.append((batch, run_siblings, group))
    for name, fn, members in joined:
        out.graph[name] = _joined(name, fn, [unsent[k] for k in members], alias)
    for key, args in unsent.items():
        if key not in alias:
            inputs = (parse_input(_renamed(a, alias)) for a in args)
            out.graph[key] = Task(key, run_on_worker, *inputs)
    return out


def dependencies(upstream: Any, reduced: Any, state_result: Any) -> set[str]:
    """Keys of the TaskRefs and futures a submission waits for."""
    found: set[str] = set()
    stack = [upstream, reduced, state_result]
    while stack:
        item = stack.pop()
        if isinstance(item, Opaque):
            item = item.value
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):  # a batch marker (see `dask_batches`)
            stack.extend(item.values())
        elif isinstance(item, TaskRef | distributed.Future):
            found.add(str(item.key))
    return found


def _renamed(item: Any, alias: Mapping[str, Any]) -> Any:
    if isinstance(item, TaskRef) and item.key in alias:
        return alias[str(item.key)]
    if isinstance(item, list):
        return [_renamed(i, alias) for i in item]
    if isinstance(item, dict):
        return {k: _renamed(v, alias) for k, v in item.items()}
    return item


def _joined(name: str, fn: Any, members: list[tuple[Any, ...]], alias: Mapping[str, Any]) -> Task:
    """One Dask task for a fused segment (each member after the head takes the previous
    one's final state) or a batch of siblings (each with its own inputs)."""
    if fn is run_segment:
        head = members[0]
        chained = [(head[0].value, head[1].value, None, None, None)]
        chained += [(c.value, st.value, up, red, res) for c, st, up, red, res in members[1:]]
        inputs = (parse_input(_renamed(a, alias)) for a in head[2:])
        return Task(name, run_segment, Opaque(chained), *inputs)
    calls_ = Opaque([(m[0].value, m[1].value) for m in members])
    columns = ([_renamed(m[i], alias) for m in members] for i in (2, 3, 4))
    return Task(name, run_siblings, calls_, *(parse_input(c) for c in columns))


def _groupable(args: tuple[Any, ...]) -> bool:
    """A call that may run in a batch of siblings: not bound to Dask worker resources."""
    return not any(str(t).startswith("dask-resource:") for t in args[0].value.task.tags)
