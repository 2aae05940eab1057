"""run_until_finished: FlowRunner passes until the flow is finished (what Flow.run does).

Between passes it waits for the earliest retry start time; it returns early with a
Running state when only paused tasks remain (someone must resume them), and with
Cancelled when `cancel` is set.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from flowrun.engine import caching, events
from flowrun.engine import state as states
from flowrun.engine.executors.base import Executor
from flowrun.engine.flow_runner import FlowRunner, cancel_watcher, default_executor
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
        runner._slugs(return_tasks)
        if return_tasks is not None
        else sorted({t.slug or "" for t in graph.terminal_tasks() | graph.reference_tasks()})
    )
    run_executor = default_executor(graph, executor)
    run_id = uuid.uuid4().hex
    waiter = cancel or threading.Event()
    current: dict[Any, states.State] = dict(task_states or {})
    flow_state = state
    with (
        run_executor.start(),
        runner.session(run_executor, on_task_state=on_task_state, run_id=run_id) as session,
        cancel_watcher(cancel, session),
    ):
        while True:
            flow_state, records = runner.run_pass(
                session,
                state=flow_state,
                task_states=current,
                parameters=parameters,
                start_tasks=start_tasks,
                context=context,
                task_contexts=task_contexts,
                cancel=cancel,
                cache_store=cache_store,
                run_id=run_id,
            )
            current = dict(records)
            if flow_state.is_finished():
                break
            delay = _next_start_delay(records.values(), flow_state)
            if delay is None or waiter.wait(delay):
                if waiter.is_set() and cancel is not None:
                    continue  # one more pass turns pending tasks into Cancelled
                break
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
