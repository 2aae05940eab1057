"""FlowRunner: one pass over a flow, from a flow state to the next flow state.

`run()` submits every task that can run, waits for their state records, and decides the
flow state from the reference tasks. It returns `Running` while tasks remain unfinished
(a retry later, a pause); `run_until_finished` (in `looping`) repeats passes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from flowrun.engine import caching, events, graph_build, signals
from flowrun.engine import context as contexts
from flowrun.engine import state as states
from flowrun.engine.executors.base import Executor, Session, safe_callback
from flowrun.engine.executors.local import LocalExecutor
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.flow_pass import FlowPass
from flowrun.engine.graph_model import FlowGraph
from flowrun.engine.logs import runner_logger
from flowrun.engine.run_inputs import RunInputs
from flowrun.engine.taskstates import TaskStateDict, TaskStates, slug_of

ENDRUN = signals.ENDRUN  # Prefect exports it from here too


class FlowRunnerInitializeResult(NamedTuple):
    """What `FlowRunner.initialize_run` returns (Prefect's name and fields)."""

    state: states.State
    task_states: dict[Any, states.State]
    context: dict[str, Any]
    task_contexts: dict[Any, dict[str, Any]]


RunnerStateHandler = Callable[["FlowRunner", states.State, states.State], "states.State | None"]


def as_flow(flow: Any) -> FlowBase:
    if isinstance(flow, FlowBase):
        return flow
    if isinstance(flow, FlowGraph):
        return graph_build.build(flow, FlowBase)
    raise TypeError(f"FlowRunner needs a Flow or a FlowGraph, got {type(flow).__name__}")


def default_executor(flow: FlowBase, executor: Executor | None) -> Executor:
    if executor is not None:
        return executor
    if flow.executor is not None:
        found: Executor = flow.executor
        return found
    return LocalExecutor()


class FlowRunner:
    """Runs a Flow (or a FlowGraph) for one pass.

    >>> from flowrun import Flow, task
    >>> with Flow("one") as flow:
    ...     t = task(lambda: 1)()
    >>> FlowRunner(flow).run(return_tasks=[t]).result[t].result
    1
    """

    def __init__(
        self, flow: Any, state_handlers: Iterable[RunnerStateHandler] | None = None
    ) -> None:
        self.flow = as_flow(flow)
        self.state_handlers = list(state_handlers or ())
        self.logger = runner_logger("flowrun.FlowRunner")

    def run(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        state: states.State | None = None,
        task_states: Mapping[Any, states.State] | None = None,
        return_tasks: Iterable[Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        executor: Executor | None = None,
        start_tasks: Iterable[Any] | None = None,
        context: Mapping[str, Any] | None = None,
        task_contexts: Mapping[Any, Mapping[str, Any]] | None = None,
        *,
        on_task_state: events.OnTaskState | None = None,
        cancel: threading.Event | None = None,
        cache_store: caching.CacheStore | None = None,
    ) -> states.State:
        try:
            inputs = RunInputs.of(
                parameters=parameters,
                task_states=task_states,
                start_tasks=start_tasks,
                context=context,
                task_contexts=task_contexts,
                cancel=cancel,
                cache_store=cache_store or caching.ReadOnlyCache(caching.current()),
                on_task_state=on_task_state,
            )
            wanted = self.slugs(return_tasks)
            with self.open(executor, inputs) as session:
                final, records = self.run_pass(session, inputs, state)
                if state is not None and final is state:
                    return final  # the flow did not run: its state as given, as in Prefect
                returned = {s: session.resolve(records[s]) for s in wanted if s in records}
        except Exception as exc:
            return self.unexpected(exc, state)
        # `{task: state}` as Prefect's; a slug string works as a key too.
        return final.replace(result=TaskStateDict.from_slugs(self.flow, TaskStates(returned)))

    def unexpected(self, exc: Exception, state: states.State | None) -> states.State:
        """An error of the run itself (not of a task) ends the flow Failed with the error
        as its result, as in Prefect; under `raise_on_exception` it is raised."""
        self.logger.exception("Unexpected error while running flow: %r", exc)
        if contexts.context.get("raise_on_exception"):
            raise exc
        failed = states.Failed(f"Unexpected error while running flow: {exc!r}", result=exc)
        return self._change(state or states.Pending(), failed)

    @contextmanager
    def open(self, executor: Executor | None, inputs: RunInputs) -> Iterator[Session]:
        """The executor started, a session for this run, and its cancel watched."""
        run_executor = default_executor(self.flow, executor)
        callback = inputs.on_task_state
        with (
            run_executor.start(),
            run_executor.session(run_id=inputs.run_id, on_task_state=callback) as session,
            inputs.cancel.watching(session),
        ):
            yield session

    def slugs(self, tasks: Iterable[Any] | None) -> list[str]:
        known = {t.slug for t in self.flow.sorted_tasks()}
        given = list(tasks or ())
        unknown = [t for t in given if getattr(t, "slug", t) not in known]
        if unknown:
            raise ValueError(f"Some tasks in return_tasks were not found in the flow: {unknown}")
        return [slug_of(t) for t in given]

    # -- flow state -----------------------------------------------------------------------
    def _change(self, old: states.State, new: states.State) -> states.State:
        """Call the flow's then the runner's state handlers; a handler that raises ends
        the flow in the state its signal stands for, or Failed (as in Prefect)."""
        try:
            new = events.call_handlers(self.flow.state_handlers, self.flow, old, new)
            new = events.call_handlers(self.state_handlers, self, old, new)
        except (signals.ENDRUN, signals.StateSignal) as sig:
            return sig.state
        except BaseException as exc:  # sys.exit() in a handler ends the flow, not the process
            self.logger.exception("Exception encountered during flow state handler: %r", exc)
            if contexts.context.get("raise_on_exception"):
                raise
            return states.Failed(
                f"Unexpected error while calling state handlers: {exc!r}", result=exc
            )
        return new

    def _begin(self, state: states.State) -> states.State:
        if state.is_finished():
            raise signals.ENDRUN(state)
        if (
            isinstance(state, states.Scheduled)
            and state.start_time
            and state.start_time > states.now()
        ):
            raise signals.ENDRUN(state)
        if state.is_running():
            return state
        if not state.is_pending():
            raise signals.ENDRUN(state)
        self.logger.info("Beginning Flow run for '%s'", self.flow.name)
        return self._change(state, states.Running("Running flow."))

    def run_pass(
        self, session: Session, inputs: RunInputs, state: states.State | None = None
    ) -> tuple[states.State, dict[str, states.State]]:
        """One pass inside an open session: (flow state, record of every task)."""
        try:
            init = self.initialize_run(
                state,
                dict(inputs.task_states),
                dict(inputs.context),
                {k: dict(v) for k, v in inputs.task_contexts.items()},
                dict(inputs.parameters),
            )
            running = self._begin(init.state)
        except signals.ENDRUN as end:
            return end.state, dict(inputs.task_states)
        inputs = dataclasses.replace(
            inputs,
            task_states={slug_of(k): v for k, v in init.task_states.items()},
            task_contexts={slug_of(k): v for k, v in init.task_contexts.items()},
        )
        context = {**init.context, "flow_run_id": inputs.run_id}
        flow_pass = FlowPass(self.flow, session, inputs, context)
        flow_pass.submit_all()
        records = flow_pass.collect()
        if inputs.cancel.is_set():
            records = cancel_unfinished(records, safe_callback(inputs.on_task_state))
            final: states.State = states.Cancelled("Flow run was cancelled.")
        else:
            final = self.determine_final_state(records, flow_pass.run_set)
        return self._change(running, final), records

    def initialize_run(
        self,
        state: states.State | None,
        task_states: dict[Any, states.State],
        context: dict[str, Any],
        task_contexts: dict[Any, dict[str, Any]],
        parameters: dict[str, Any],
    ) -> FlowRunnerInitializeResult:
        """Prefect's first step of each pass: the state to start from (Pending if none)
        and the run's context. A subclass may override it: an ENDRUN it raises ends the
        pass in that signal's state, another error ends the flow Failed."""
        run_context = self._context(context, parameters)
        return FlowRunnerInitializeResult(
            state or states.Pending(), task_states, run_context, task_contexts
        )

    def _context(self, given: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
        # The caller's `with flowrun.context(...)` values reach the tasks, as in Prefect;
        # the date keys are defaults that a caller's context may set.
        base: dict[str, Any] = {**contexts.context.to_dict(), **given}
        base.pop("caches", None)  # looked up here, in the client; tasks need not carry it
        # Parameters: the context's, then the defaults, then the ones given (Prefect's order).
        values: dict[str, Any] = dict(base.get("parameters") or {})
        for p in self.flow.parameters():
            if not p.required:
                values.setdefault(p.name, p.default)
        values.update(parameters)
        base["parameters"] = values
        base["flow_name"] = self.flow.name
        base.setdefault("scheduled_start_time", states.now())
        for key, value in _date_keys(self._date(base)).items():
            base.setdefault(key, value)
        return base

    def _date(self, base: dict[str, Any]) -> dt.datetime:
        """The run's `date` (a datetime or an ISO 8601 text given in the context), else now."""
        given = base.get("date")
        if isinstance(given, str):
            with contextlib.suppress(ValueError):
                given = base["date"] = dt.datetime.fromisoformat(given)
        if isinstance(given, dt.datetime):
            return given
        if given is not None:
            self.logger.warning(
                "`date` was set in the context manually but could not be parsed into a "
                "pendulum `DateTime` object or a datetime; `today`, `tomorrow` and the other "
                "date keys use the current time."
            )
        return states.now()

    def determine_final_state(
        self, records: Mapping[str, states.State], run_set: set[str] | None = None
    ) -> states.State:
        def pick(tasks: Iterable[Any]) -> list[states.State]:
            return states.flatten_mapped(
                records[t.slug] for t in tasks if run_set is None or t.slug in run_set
            )

        if not all(s.is_finished() for s in pick(self.flow.terminal_tasks())):
            return states.Running("Flow run RUNNING: terminal tasks are incomplete.")
        key_states = pick(self.flow.reference_tasks())
        final: states.State
        if any(s.is_failed() for s in key_states):
            final = states.Failed("Some reference tasks failed.")
        elif all(s.is_successful() for s in key_states):
            final = states.Success("All reference tasks succeeded.")
        else:
            final = states.Success("No reference tasks failed.")
        self.logger.info("Flow run %s: %s", type(final).__name__.upper(), final.message)
        handler = getattr(self.flow, "terminal_state_handler", None)
        if handler is not None:
            given = final.thaw()
            final = (handler(self.flow, given, key_states) or given).seal()
        return final


def _date_keys(now: dt.datetime) -> dict[str, Any]:
    days = {"today": now, "yesterday": now - dt.timedelta(days=1)}
    days["tomorrow"] = now + dt.timedelta(days=1)
    keys: dict[str, Any] = {"date": now}
    for name, day in days.items():
        keys[name] = day.strftime("%Y-%m-%d")
        keys[f"{name}_nodash"] = day.strftime("%Y%m%d")
    return keys


def cancel_unfinished(
    records: Mapping[str, states.State], on_task_state: events.OnTaskState | None
) -> dict[str, states.State]:
    """After a cancel, every task and mapped child not finished (Running, Retrying, ...)
    ends Cancelled; the callback hears of every Cancelled one, since a task stopped from
    the client side (a Dask future) may have reported only that it was Running."""

    def end(slug: str, index: int | None, st: states.State) -> states.State:
        if not st.is_finished():
            st = states.Cancelled(f"Flow run was cancelled while the task was {type(st).__name__}.")
        if on_task_state is not None and isinstance(st, states.Cancelled):
            on_task_state(events.event_for(slug, index, st, 0))
        return st

    ended: dict[str, states.State] = {}
    for slug, st in records.items():
        if isinstance(st, states.Mapped) and st.map_states:
            kids = tuple(end(slug, i, c) for i, c in enumerate(st.map_states))
            ended[slug] = st.replace(map_states=kids, result=[k.result for k in kids])
        else:
            ended[slug] = end(slug, None, st)
    return ended
