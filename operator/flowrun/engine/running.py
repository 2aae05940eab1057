"""Flow.run: check the parameters, then run once or once per scheduled time.

As in Prefect, the returned flow state's `result` is `{task: state}` for every task of
the flow, with every result fetched into this process (on any executor). The operator
does not come this way: it calls `run_until_finished` with its return tasks, so other
results stay on the cluster.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping
from typing import Any

from flowrun.engine import caching, looping, scheduled
from flowrun.engine import state as states
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.flow_runner import FlowRunner
from flowrun.engine.taskstates import TaskStateDict


def check_parameters(
    flow: FlowBase, given: Mapping[str, Any], context: Mapping[str, Any] | None = None
) -> None:
    names = {p.name for p in flow.parameters()}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ValueError(
            f"Flow.run received the following unexpected parameters: {', '.join(unknown)}"
        )
    # A required parameter may come in the context's `parameters`, as in Prefect.
    in_context = (context or {}).get("parameters") or {}
    missing = sorted(
        p.name
        for p in flow.parameters()
        if p.required and p.name not in given and p.name not in in_context
    )
    if missing:
        raise ValueError(
            f"Flow.run did not receive the following required parameters: {', '.join(missing)}"
        )


def run_flow(
    flow: FlowBase,
    parameters: Mapping[str, Any] | None,
    executor: Any,
    run_on_schedule: bool | None = None,
    runner_cls: type[FlowRunner] | None = None,
    **kwargs: Any,
) -> states.State:
    if "return_tasks" in kwargs:
        raise ValueError(
            "The `return_tasks` keyword cannot be provided to `Flow.run()`: it returns "
            "every task's state."
        )
    names = {p.name for p in flow.parameters()}
    given = dict(parameters or {})
    given.update({k: kwargs.pop(k) for k in list(kwargs) if k in names})
    context = dict(kwargs.pop("context", None) or {})
    if "flow_run_name" in kwargs:
        context["flow_run_name"] = kwargs.pop("flow_run_name")
    runner = (runner_cls or FlowRunner)(flow)
    # An unknown keyword is the caller's mistake, raised (TypeError) as in Prefect; errors
    # of the run itself end it Failed instead (see `FlowRunner.unexpected`).
    inspect.signature(looping.run_until_finished).bind_partial(runner, **kwargs)

    def run_once(params: Mapping[str, Any], ctx: Mapping[str, Any]) -> states.State:
        check_parameters(flow, params, ctx)
        # As in Prefect, flow.run sets the scheduled start time (the schedule's, or now).
        ctx = {**ctx, "scheduled_start_time": ctx.get("scheduled_start_time", states.now())}
        options = {"cache_store": caching.current(), **kwargs}
        try:
            while True:
                final = looping.run_until_finished(
                    runner,
                    parameters=params,
                    executor=executor or flow.executor,
                    context=ctx,
                    return_tasks=flow.sorted_tasks(),
                    **options,
                )
                resumed = _resume_on_terminal(flow, final)
                if not resumed:
                    break
                options.update(state=final, task_states={**final.result, **resumed})
        except Exception as exc:
            return runner.unexpected(exc, None)
        # Every task has a state, also when the flow did not run (Pending then).
        found = final.result if isinstance(final.result, Mapping) else {}
        every = {
            t.slug or "": found.get(t.slug or "") or states.Pending("Task not run.")
            for t in flow.sorted_tasks()
        }
        return final.replace(result=TaskStateDict.from_slugs(flow, every))

    context.pop("scheduled_start_time", None)
    schedule = getattr(flow, "schedule", None)
    if schedule is None or run_on_schedule is False:
        return run_once(given, context)
    return scheduled.run_on_schedule(schedule, given, context, run_once)


def _resume_on_terminal(flow: FlowBase, final: states.State) -> dict[str, states.State]:
    """Prefect's `flow.run()` asks on the terminal whether to resume each Paused task;
    so does flowrun, when standard input is a terminal (otherwise, and when none is
    resumed, `flow.run()` returns Running: resume with `task_states={task: Resume()}`)."""
    if final.is_finished() or not isinstance(final.result, Mapping) or not sys.stdin.isatty():
        return {}
    resumed: dict[str, states.State] = {}
    for slug, st in final.result.items():
        if isinstance(st, states.Paused):
            task = flow.task_by_slug(slug)
            answer = input(f"{task} is currently Paused; enter 'y' to resume:\n")
            if answer.strip().lower() == "y":
                resumed[slug] = states.Resume("Approval given to resume.")
    return resumed
