"""The executor interface the FlowRunner drives.

An executor has Prefect's `start()` / `submit()` / `wait()`. For a flow run the FlowRunner
opens a `session()` (by default tasks go through `submit()` and `wait()`), which submits
TaskCalls and hands back small state *records*: the state class, message and bookkeeping
of each task, with its result left where it is (a value in process, a future on a Dask
cluster).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from flowrun.engine import calls, events, interrupts
from flowrun.engine import state as states
from flowrun.engine.logs import runner_logger

log = logging.getLogger("flowrun.engine")


class SchedulerLost(RuntimeError):
    """The run's Dask scheduler went away mid-run: its tasks and the results it held are
    gone, so the run cannot go on (nothing is run again behind the run's back)."""


class Session(Protocol):
    def submit_call(
        self, call: calls.TaskCall, state: Any, upstream: list[Any], reduced: list[Any]
    ) -> Any: ...

    def submit_children(
        self,
        calls_: Sequence[calls.TaskCall],
        states_: Sequence[Any],
        inputs: Sequence[tuple[list[Any], list[Any]]],
    ) -> list[Any]: ...

    def record(self, handle: Any) -> states.State | None:
        """The small state record of a finished TaskCall, or None while it runs."""
        ...

    def wait_some(self, handles: Sequence[Any], timeout: float) -> None:
        """Block until one of `handles` has a record, or `timeout` seconds passed."""
        ...

    def resolve(self, record: states.State) -> states.State:
        """The record with its result value fetched (only for return_tasks)."""
        ...

    def as_upstream(self, given: states.State) -> Any:
        """What to pass downstream for a state given in task_states."""
        ...

    def cancel(self) -> None:
        """Start nothing more and interrupt what runs. Called once, by the run's
        `run_inputs.Cancellation` (a second interrupt could land in a task's cleanup)."""
        ...

    def flush(self) -> None:
        """Send what was submitted so far (an executor may batch submissions)."""
        ...

    def drain_events(self) -> None:
        """Deliver queued TaskEvents to the callback, in the caller's thread."""
        ...


class Executor:
    """The executor base class, as Prefect's: `start()` (a context manager), `submit(fn,
    *args, extra_context=None, **kwargs)`, `wait(futures)`. Subclass it for an executor of
    your own: flowrun's runners drive it through `session()`, which by default runs each
    task call through `submit()` and `wait()`."""

    def __init__(self) -> None:
        self.logger = runner_logger(f"flowrun.{type(self).__name__}")

    def __repr__(self) -> str:
        return f"<Executor: {type(self).__name__}>"

    @contextmanager
    def start(self) -> Iterator[Any]:
        yield None

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        extra_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement submit()")

    def wait(self, futures: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement wait()")

    def session(
        self, *, run_id: str, on_task_state: events.OnTaskState | None
    ) -> AbstractContextManager[Session]:
        """How flowrun's runners drive this executor. This default serves an executor that
        has only Prefect's `submit()` / `wait()`: each task call is submitted and waited
        for at once, one at a time (Prefect's runners submit everything, then wait)."""
        return contextmanager(in_process_session)(
            self.run_call, run_id=run_id, on_task_state=on_task_state
        )

    def run_call(
        self, call: calls.TaskCall, state: Any, upstream: list[Any], reduced: list[Any]
    ) -> states.State:
        """One task call through `submit()` and `wait()`, with Prefect's `extra_context`."""
        task = call.task
        extra = {"task_name": task.name, "task_tags": task.tags, "task_index": call.map_index}
        future = self.submit(calls.run_task, call, state, upstream, reduced, extra_context=extra)
        done: states.State = self.wait(future)
        return done


def safe_callback(callback: events.OnTaskState | None) -> events.OnTaskState | None:
    """A TaskEvent callback whose errors are logged instead of failing the task."""
    if callback is None:
        return None
    cb = callback

    def call(event: events.TaskEvent) -> None:
        try:
            cb(event)
        except Exception:
            log.exception("on_task_state callback failed for %s", event.task)

    return call


class InProcessSession:
    """A session whose TaskCalls finish at submit (Local and Synchronous executors)."""

    def __init__(
        self,
        run: Callable[..., states.State],
        *,
        run_id: str,
        on_task_state: events.OnTaskState | None,
    ) -> None:
        self._run = run
        self._on_event = safe_callback(on_task_state)
        self._run_id = run_id

    def _with_sinks(self, call: calls.TaskCall) -> calls.TaskCall:
        if self._on_event is None:
            return call
        return dataclasses.replace(call, on_event=self._on_event)

    def submit_call(
        self, call: calls.TaskCall, state: Any, upstream: list[Any], reduced: list[Any]
    ) -> states.State:
        return self._run(self._with_sinks(call), state, upstream, reduced)

    def submit_children(
        self,
        calls_: Sequence[calls.TaskCall],
        states_: Sequence[Any],
        inputs: Sequence[tuple[list[Any], list[Any]]],
    ) -> list[Any]:
        return [
            self.submit_call(c, s, u, r)
            for c, s, (u, r) in zip(calls_, states_, inputs, strict=True)
        ]

    def record(self, handle: Any) -> states.State | None:
        return handle if isinstance(handle, states.State) else None

    def wait_some(self, handles: Sequence[Any], timeout: float) -> None:
        return None

    def resolve(self, record: states.State) -> states.State:
        return record

    def as_upstream(self, given: states.State) -> Any:
        return given

    def cancel(self) -> None:
        interrupts.cancel_scope(self._run_id)

    def drain_events(self) -> None:
        return None

    def flush(self) -> None:
        return None


def in_process_session(
    run: Callable[..., states.State], *, run_id: str, on_task_state: events.OnTaskState | None
) -> Iterator[Session]:
    yield InProcessSession(run, run_id=run_id, on_task_state=on_task_state)
