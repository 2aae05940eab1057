"""TaskRunner: runs one task (or one mapped child) as a pipeline of small checks.

Each step takes the current state and returns the next one, or raises ENDRUN to finish
with a state. Every change calls the task's state handlers and reports a TaskEvent.
This is where a task's code runs: in the client for LocalExecutor, on a worker for Dask.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flowrun.engine import (
    cache_validators,
    checkpoints,
    events,
    flattening,
    interrupts,
    signals,
    stdout_log,
)
from flowrun.engine import context as contexts
from flowrun.engine import state as states
from flowrun.engine.task import Task

LOOP_KEYS = ("task_loop_count", "task_loop_result")
ENDRUN = signals.ENDRUN  # Prefect exports it from here too
RunnerStateHandler = Callable[["TaskRunner", states.State, states.State], "states.State | None"]


def _upstream_list(upstream_states: Mapping[Any, states.State]) -> list[states.State]:
    return flattening.mapped_edge_states(upstream_states)


class TaskRunner:
    """Runs a task once (through retries and loops within this call, never waiting).

    >>> from flowrun import task
    >>> TaskRunner(task(lambda: 1)).run().result
    1
    """

    def __init__(
        self,
        task: Task,
        state_handlers: Iterable[RunnerStateHandler] = (),
        *,
        on_event: events.OnTaskState | None = None,
        cache_candidates: Iterable[states.State] = (),
    ) -> None:
        self.task = task
        self.state_handlers = list(state_handlers)
        self.on_event = on_event
        self.cache_candidates = tuple(cache_candidates)
        # The context where the runner is made, as in Prefect; `run(context=)` adds to it.
        self._made_in = contexts.context.to_dict()
        self.context: dict[str, Any] = dict(self._made_in)
        self.run_count = 1
        self.logger = logging.getLogger("flowrun.TaskRunner")

    # -- the pipeline ----------------------------------------------------------------------
    def run(
        self,
        state: states.State | None = None,
        upstream_states: Mapping[Any, states.State] | None = None,
        context: Mapping[str, Any] | None = None,
        is_mapped_parent: bool = False,
        *,
        is_start_task: bool = False,
    ) -> states.State:
        state = state or states.Pending()
        upstream = upstream_states or {}
        self.context = ctx = {**self._made_in, **contexts.context.to_dict(), **(context or {})}
        # A scheduled state (Resume, Paused, ...) carries the run count it was made in,
        # as in Prefect, so a resumed task's retries still count down.
        self.run_count = (
            state.run_count + 1
            if isinstance(state, states.Retrying)
            else state.context.get("task_run_count") or ctx.get("task_run_count", 1)
        )
        ctx["task_run_count"] = self.run_count
        ctx.setdefault("task_name", self.task.name)
        ctx.setdefault("task_slug", self.task.slug)
        ctx.setdefault("task_tags", self.task.tags)
        ctx["logger"] = self.task.logger  # Prefect's `context.logger` in a task run
        index = ctx.get("map_index")
        ctx.setdefault(
            "task_full_name", self.task.name if index is None else f"{self.task.name}[{index}]"
        )
        if isinstance(state, states.Resume) or (
            isinstance(state, states.Paused)
            and state.start_time is not None
            and state.start_time <= states.now()
        ):
            ctx["resume"] = True
        ctx.update({k: state.context[k] for k in LOOP_KEYS if k in state.context})
        while True:
            with contexts.using(ctx):
                try:
                    state = self._pipeline(state, upstream, is_mapped_parent, is_start_task)
                except signals.ENDRUN as end:
                    return end.state
                except signals.PAUSE as pause:
                    # A state handler paused the task (as Prefect allows): end Paused.
                    return self._paused(state, pause)
            if not isinstance(state, states.Looped):
                return state
            # The next iteration starts afresh from Pending, as in Prefect: handlers do not
            # see that transition and the run count restarts.
            ctx["task_loop_count"] = state.loop_count + 1
            ctx["task_loop_result"] = state.result
            ctx["task_run_count"] = self.run_count = 1
            state = states.Pending(f"Looping task (on loop index {state.loop_count})")

    def _paused(self, state: states.State, pause: signals.PAUSE) -> states.State:
        try:
            return self._change(state, pause.state)
        except (signals.ENDRUN, signals.PAUSE) as again:
            return again.state

    def _pipeline(
        self,
        state: states.State,
        upstream: Mapping[Any, states.State],
        is_parent: bool,
        is_start: bool,
    ) -> states.State:
        state = self.check_task_is_ready(state)
        state = self.check_task_reached_start_time(state)
        if not is_start:
            state = self.check_upstream_finished(state, upstream)
            state = self.check_upstream_skipped(state, upstream)
        if is_parent:
            self.check_task_ready_to_map(state, upstream)
        inputs = self.get_task_inputs(upstream)
        self._name_run(inputs)
        if self.task.target:
            state = self.check_target(state, inputs)
        else:
            state = self.check_task_is_cached(state, inputs)
        if not is_start:
            state = self.check_task_trigger(state, upstream)
        state = self.set_task_to_running(state)
        state = self.get_task_run_state(state, inputs)
        state = self.cache_result(state, inputs)
        return self.check_for_retry(state)

    # -- state changes ---------------------------------------------------------------------
    def _change(self, old: states.State, new: states.State) -> states.State:
        """Call the state handlers (the task's, then the runner's) and report the change."""
        if new is old:
            return new
        try:
            new = events.call_handlers(self.task.state_handlers, self.task, old, new)
            new = events.call_handlers(self.state_handlers, self, old, new)
        except (signals.ENDRUN, signals.PAUSE):
            raise
        except signals.StateSignal as sig:
            new = sig.state
        except BaseException as exc:  # sys.exit() in a handler too ends this task only
            self.logger.exception(
                "Task '%s': Exception encountered during task state handler: %r",
                self.context.get("task_full_name", self.task.name),
                exc,
            )
            self._debug_reraise()
            failed = states.Failed(
                f"Unexpected error while calling state handlers: {exc!r}", result=exc
            )
            self._report(failed)
            raise signals.ENDRUN(failed) from exc
        self._report(new)
        return new

    def _report(self, new: states.State) -> None:
        if self.on_event is not None:
            slug = self.task.slug or self.task.name
            self.on_event(
                events.event_for(slug, self.context.get("map_index"), new, self.run_count)
            )

    def _end(self, old: states.State, new: states.State) -> signals.ENDRUN:
        return signals.ENDRUN(self._change(old, new))

    # -- the steps -------------------------------------------------------------------------
    def check_task_is_ready(self, state: states.State) -> states.State:
        if isinstance(state, states.Cached | states.Mapped) or state.is_pending():
            return state
        raise signals.ENDRUN(state)

    def check_task_reached_start_time(self, state: states.State) -> states.State:
        if isinstance(state, states.Scheduled) and not isinstance(state, states.Resume):
            start = state.start_time
            if start is None or start > states.now():
                raise signals.ENDRUN(state)
        return state

    def check_upstream_finished(
        self, state: states.State, upstream: Mapping[Any, states.State]
    ) -> states.State:
        if not all(s.is_finished() for s in _upstream_list(upstream)):
            raise signals.ENDRUN(state)
        return state

    def check_upstream_skipped(
        self, state: states.State, upstream: Mapping[Any, states.State]
    ) -> states.State:
        if self.task.skip_on_upstream_skip and any(
            s.is_skipped() for s in _upstream_list(upstream)
        ):
            raise self._end(
                state,
                states.Skipped(
                    "Upstream task was skipped; if this was not the intended behavior, "
                    "consider changing `skip_on_upstream_skip=False` for this task."
                ),
            )
        return state

    def check_task_ready_to_map(
        self, state: states.State, upstream: Mapping[Any, states.State]
    ) -> None:
        """Decide the parent of a mapped task: always ends the run, with Mapped(n) or why not."""
        if isinstance(state, states.Mapped):
            raise signals.ENDRUN(state)
        lengths: list[int] = []
        for edge, up in upstream.items():
            if not edge.mapped:
                continue
            if isinstance(up, states.Mapped):
                count = up.n_map_states
                if edge.flattened:
                    count = len(flattening.flatten_children(up.map_states))
                lengths.append(count)
                continue
            if not up.is_successful():
                continue
            value = up.result
            if edge.flattened:
                value = flattening.flatten_result(value)
            if not hasattr(value, "__getitem__") or not hasattr(value, "__len__"):
                raise self._end(
                    state, states.Failed("At least one upstream state has an unmappable result.")
                )
            lengths.append(len(value))
        if not lengths:
            raise self._end(state, states.Failed("No upstream states can be mapped over."))
        raise self._end(
            state, states.Mapped("Ready to proceed with mapping.", n_map_states=min(lengths))
        )

    def get_task_inputs(self, upstream: Mapping[Any, states.State]) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for edge, up in upstream.items():
            if edge.key is not None:
                value = up.result
                if edge.flattened and not edge.mapped:  # a mapped edge took its element
                    value = _flattened_value(up)
                inputs[edge.key] = value
        return inputs

    def set_task_run_name(self, task_inputs: Mapping[str, Any]) -> None:
        """Prefect's step: `task_run_name` from inputs given as Results (their `.value`)."""
        self._name_run({k: getattr(v, "value", v) for k, v in task_inputs.items()})

    def _name_run(self, inputs: Mapping[str, Any]) -> None:
        """`task_run_name` in the context: the task's template formatted with its inputs,
        or what its callable returns for them, as in Prefect."""
        template = self.task.task_run_name
        if not template:
            return
        name = template(**inputs) if callable(template) else template.format(**inputs)
        self.context["task_run_name"] = name
        contexts.context.update(task_run_name=name)

    def check_target(self, state: states.State, inputs: Mapping[str, Any]) -> states.State:
        found = checkpoints.found_at_target(self.task, self.context, inputs)
        return state if found is None else self._change(state, found)

    def check_task_is_cached(self, state: states.State, inputs: Mapping[str, Any]) -> states.State:
        task = self.task
        params = self.context.get("parameters") or {}
        if isinstance(state, states.Cached):
            if task.cache_validator(state, inputs, params):
                return state
            state = self._change(state, states.Pending("Cache was invalid; ready to run."))
        if task.cache_for is not None:
            for candidate in self.cache_candidates:
                if isinstance(candidate, states.Cached) and task.cache_validator(
                    candidate, inputs, params
                ):
                    return self._change(state, candidate)
        return state

    def check_task_trigger(
        self, state: states.State, upstream: Mapping[Any, states.State]
    ) -> states.State:
        try:
            if not self.task.trigger(upstream):
                raise signals.TRIGGERFAIL("Trigger failed.")
        except signals.StateSignal as sig:
            raise self._end(state, sig.state) from None
        except BaseException as exc:
            failed = states.TriggerFailed(
                f"Unexpected error while checking task trigger: {exc!r}", result=exc
            )
            raise self._end(state, failed) from exc
        return state

    def set_task_to_running(self, state: states.State) -> states.State:
        if not state.is_pending():
            raise signals.ENDRUN(state)
        return self._change(state, states.Running("Starting task run."))

    def get_task_run_state(self, state: states.State, inputs: Mapping[str, Any]) -> states.State:
        task = self.task
        new: states.State
        try:
            value = interrupts.call_guarded(
                stdout_log.wrap(task, task.run_with),
                inputs,
                timeout=task.timeout,
                scope=self.context.get("flow_run_id"),
                label=str(self.context.get("task_full_name", task.name)),
            )
        except signals.TaskTimeout as timeout:
            self._debug_reraise()
            new = states.TimedOut("Task timed out during execution.", result=timeout)
        except signals.TaskCancelled:
            new = states.Cancelled("Task was cancelled.")
        except signals.LOOP as loop:
            new = states.Looped(
                loop.state.message,
                result=loop.state.result,
                loop_count=self.context.get("task_loop_count", 1),
            )
        except signals.RETRY as retry:
            # Keeps the signal's start_time (RETRY(start_time=...) waits until then).
            new = retry.state.replace(run_count=self.run_count)
        except signals.ENDRUN:
            raise
        except signals.StateSignal as sig:
            new = sig.state
        except Exception as exc:
            self.logger.exception(
                "Task '%s': Exception encountered during task execution!",
                self.context.get("task_full_name", task.name),
            )
            self._debug_reraise()
            new = states.Failed(f"Error during execution of task: {exc!r}", result=exc)
        except BaseException as exc:
            # sys.exit(), KeyboardInterrupt, ...: they end this task, never the process.
            new = states.Failed(
                f"Task raised {type(exc).__name__}({_args(exc)}), which ends the task only.",
                result=exc,
            )
        else:
            new = self._succeeded(value, inputs)
        return self._change(state, new)

    def _succeeded(self, value: Any, inputs: Mapping[str, Any]) -> states.State:
        try:
            stored = checkpoints.checkpointed(self.task, self.context, inputs, value)
        except Exception as exc:
            self.logger.exception("Task '%s': writing its result failed", self.task.name)
            return states.Failed(f"Error writing the task's result: {exc!r}", result=exc)
        return states.Success("Task run succeeded.", result=stored)

    def _debug_reraise(self) -> None:
        """Inside an `except` block: re-raise what the task raised when the run context has
        `raise_on_exception` (`flowrun.utilities.debug.raise_on_exception()`)."""
        if self.context.get("raise_on_exception"):
            raise  # noqa: PLE0704 - called only from except blocks

    def cache_result(self, state: states.State, inputs: Mapping[str, Any]) -> states.State:
        task = self.task
        if task.cache_for is None or type(state) is not states.Success:
            return state
        cached = states.Cached(
            state.message,
            result=state.result,
            hashed_inputs=cache_validators.hash_inputs(inputs),
            cached_parameters=dict(self.context.get("parameters") or {}),
            cached_result_expiration=states.now() + task.cache_for,
        )
        return self._change(state, cached)

    def check_for_retry(self, state: states.State) -> states.State:
        task = self.task
        if not state.is_failed() or self.run_count > task.max_retries:
            return state
        if task.retry_on is not None and not isinstance(state.result, tuple(task.retry_on)):
            return state
        # A loop that fails mid-way retries from the same iteration (as in Prefect).
        looping = {k: self.context[k] for k in LOOP_KEYS if k in self.context}
        retry = states.Retrying(
            f"Retrying Task (after attempt {self.run_count} of {task.max_retries + 1})",
            context=looping,
            start_time=states.now() + task.retry_delay,
            run_count=self.run_count,
        )
        return self._change(state, retry)


def _args(exc: BaseException) -> str:
    return ", ".join(repr(a) for a in exc.args)


def _flattened_value(up: states.State) -> Any:
    if isinstance(up, states.Mapped):
        return [child.result for child in flattening.flatten_children(up.map_states)]
    return flattening.flatten_result(up.result)
