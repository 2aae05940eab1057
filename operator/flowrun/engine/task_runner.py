"""TaskRunner: runs one task (or one mapped child) as a pipeline of small checks.

Each step takes the current state and returns the next one, or raises ENDRUN to finish
with a state. Every change calls the task's state handlers and reports a TaskEvent.
This is where a task's code runs: in the client for LocalExecutor, on a worker for Dask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flowrun.engine import (
    cache_validators,
    checkpoints,
    events,
    interrupts,
    signals,
    stdout_log,
)
from flowrun.engine import context as contexts
from flowrun.engine import state as states
from flowrun.engine.logs import runner_logger
from flowrun.engine.task import Task
from flowrun.engine.task_steps import TaskSteps

LOOP_KEYS = ("task_loop_count", "task_loop_result")
ENDRUN = signals.ENDRUN  # Prefect exports it from here too
RunnerStateHandler = Callable[["TaskRunner", states.State, states.State], "states.State | None"]


class TaskRunner(TaskSteps):
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
        self.logger = runner_logger("flowrun.TaskRunner")

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
        name = ctx["task_full_name"]
        # Prefect's INFO lines, once per run (not per loop iteration).
        self.logger.info("Task '%s': Starting task run...", name)
        final = self._loop(ctx, state, upstream, is_mapped_parent, is_start_task)
        self.logger.info(
            "Task '%s': Finished task run for task with final state: '%s'",
            name,
            type(final).__name__,
        )
        return final

    def _loop(
        self,
        ctx: dict[str, Any],
        state: states.State,
        upstream: Mapping[Any, states.State],
        is_parent: bool,
        is_start: bool,
    ) -> states.State:
        """The pipeline, again for each LOOP iteration."""
        while True:
            with contexts.using(ctx):
                try:
                    state = self._pipeline(state, upstream, is_parent, is_start)
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
            new = self._looped(loop, inputs)
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
            return self._write_failed(exc)
        return states.Success("Task run succeeded.", result=stored)

    def _looped(self, loop: signals.LOOP, inputs: Mapping[str, Any]) -> states.State:
        """A LOOP iteration's result is checkpointed as a final one is (as in Prefect)."""
        try:
            stored = checkpoints.checkpointed(self.task, self.context, inputs, loop.state.result)
        except Exception as exc:
            return self._write_failed(exc)
        count = self.context.get("task_loop_count", 1)
        return states.Looped(loop.state.message, result=stored, loop_count=count)

    def _write_failed(self, exc: Exception) -> states.State:
        self.logger.exception("Task '%s': writing its result failed", self.task.name)
        return states.Failed(f"Error writing the task's result: {exc!r}", result=exc)

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
