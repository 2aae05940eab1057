"""run_until_finished: FlowRunner passes until the flow is finished (what Flow.run does).

Between passes it waits for the earliest retry start time; it returns early with a
Running state when only paused tasks remain (someone must resume them), and with
Cancelled when `cancel` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from flowrun.engine import caching, events
from flowrun.engine import state as states
from flowrun.engine.executors.base import Executor
from flowrun.engine.flow_runner import FlowRunner
from flowrun.engine.run_inputs import RunInputs
from flowrun.engine.taskstates import TaskStates


def run_until_finished(
    flow: Any,
    *,
    state: states.State | None = None,
    parameters: Mapping[str, Any] | None = None,
    task_states: Mapping[Any, states.State] | None = None,
    start_tasks: Iterable[Any] | None = None,
    return_tasks: Iterable[Any] | None = None,
    executor: Executor | None = None,
    context: Mapping[str, Any] | None = None,
    task_contexts: Mapping[Any, Mapping[str, Any]] | None = None,
    on_task_state: events.OnTaskState | None = None,
    cancel: threading.Event | None = None,
    cache_store: caching.CacheStore | None = None,
) -> states.State:
    """Run passes until finished; `result` maps every task slug to its state.

    Results of `return_tasks` (default: terminal and reference tasks) are fetched into the
    client; the others stay where they are (a future, with DaskExecutor).
    """
    runner = flow if isinstance(flow, FlowRunner) else FlowRunner(flow)
    graph = runner.flow
    wanted = (
        runner.slugs(return_tasks)
        if return_tasks is not None
        else sorted({t.slug or "" for t in graph.terminal_tasks() | graph.reference_tasks()})
    )
    inputs = RunInputs.of(
        parameters=parameters,
        task_states=task_states,
        start_tasks=start_tasks,
        context=context,
        task_contexts=task_contexts,
        cancel=cancel,
        cache_store=cache_store,
        on_task_state=on_task_state,
    )
    flow_state = state
    with runner.open(executor, inputs) as session:
        while True:
            cancelled_before = inputs.cancel.is_set()
            flow_state, records = runner.run_pass(session, inputs, flow_state)
            inputs = inputs.with_task_states(records)
            if flow_state.is_finished() or cancelled_before:
                break
            delay = _next_start_delay(records.values(), flow_state)
            if delay is None or inputs.cancel.wait(delay):
                if inputs.cancel.is_set():
                    continue  # one more pass turns pending tasks into Cancelled
                break
        current = inputs.task_states
        returned = {s: session.resolve(r) if s in wanted else r for s, r in current.items()}
    return flow_state.replace(result=TaskStates(returned))


def _next_start_delay(found: Iterable[states.State], flow_state: states.State) -> float | None:
    """Seconds until the earliest scheduled task may start; None if nothing is scheduled."""
    starts = []
    for st in [flow_state, *states.flatten_mapped(found)]:
        if isinstance(st, states.Scheduled) and st.start_time is not None and not st.is_finished():
            starts.append(st.start_time)
    if not starts:
        return None
    return max(0.0, (min(starts) - states.now()).total_seconds())
