"""TaskCall and `run_task`: what an executor runs for one task or one mapped child.

`run_task` executes where the task runs (in process, or on a Dask worker). Its upstream
arguments arrive as States, or as plain values when they came from a future fetched by
name; mapped children slice their upstream results here, so a big upstream result
is never copied into every child's submission.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowrun.engine import events
from flowrun.engine import state as states
from flowrun.engine.edges import EdgeRef
from flowrun.engine.flattening import flatten_children, flatten_result
from flowrun.engine.task import Task
from flowrun.engine.task_runner import TaskRunner

# Reports how a run ended: (call, final state, run count). An executor supplies it.
DoneSink = Callable[["TaskCall", states.State, int], None]


@dataclasses.dataclass(frozen=True)
class TaskCall:
    task: Task
    edges: tuple[EdgeRef, ...]
    constants: Mapping[str, Any]
    context: Mapping[str, Any]
    map_index: int | None = None
    # For each edge: True when this child still has to take element `map_index` itself.
    slice_here: tuple[bool, ...] = ()
    is_mapped_parent: bool = False
    is_start_task: bool = False
    key: str | None = None
    on_event: events.OnTaskState | None = None
    on_done: DoneSink | None = None
    cache_candidates: tuple[states.State, ...] = ()


def as_state(value: Any) -> states.State:
    return value if isinstance(value, states.State) else states.Success(result=value)


def _child_view(up: states.State, edge: EdgeRef, index: int) -> states.State:
    if edge.flattened and isinstance(up, states.Mapped):
        return flatten_children(up.map_states)[index]
    value = up.result
    if edge.flattened:
        value = flatten_result(value)
    if not hasattr(value, "__getitem__"):
        # A resumed upstream without its result (Prefect passes None to the child).
        return up.replace(result=None)
    return up.replace(result=value[index])


def upstream_states(
    call: TaskCall, upstream: Sequence[Any], reduced: Sequence[Sequence[Any] | None]
) -> dict[EdgeRef, states.State]:
    found: dict[EdgeRef, states.State] = {}
    for i, edge in enumerate(call.edges):
        children = reduced[i] if reduced else None
        if children is not None:
            kids = [as_state(c) for c in children]
            up: states.State = states.Mapped(map_states=kids, result=[k.result for k in kids])
        else:
            up = as_state(upstream[i])
        if (
            call.slice_here
            and call.slice_here[i]
            and call.map_index is not None
            and up.is_successful()
        ):
            up = _child_view(up, edge, call.map_index)
        found[edge] = up
    for key, value in call.constants.items():
        found[EdgeRef(upstream="", key=key)] = states.Success(result=value)
    return found


def run_task(
    call: TaskCall,
    state: Any,
    upstream: Sequence[Any],
    reduced: Sequence[Sequence[Any] | None] = (),
    state_result: Any = None,
) -> states.State:
    """Run one TaskRunner; report the final state through `call.on_done`.

    `state_result` carries the result of `state` when it travelled separately (a future).
    """
    start = as_state(state) if state is not None else states.Pending()
    if state_result is not None:
        start = start.replace(result=as_state(state_result).result)
    context = call.context
    if call.map_index is not None:
        context = {**context, "map_index": call.map_index}
    runner = TaskRunner(call.task, on_event=call.on_event, cache_candidates=call.cache_candidates)
    final = runner.run(
        start,
        upstream_states(call, upstream, reduced),
        context,
        is_mapped_parent=call.is_mapped_parent,
        is_start_task=call.is_start_task,
    )
    if call.on_done is not None:
        call.on_done(call, final, runner.run_count)
    return final
