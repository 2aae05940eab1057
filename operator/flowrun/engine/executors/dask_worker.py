"""The worker side of DaskExecutor: what runs inside a Dask task on a worker.

Task code runs here through `calls.run_task`; events and final records go back to the
client as plain dicts on the run's topic (`Worker.log_event`), never as pickled results.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import distributed
from dask._task_spec import TaskRef
from distributed.threadpoolexecutor import thread_state

from flowrun.engine import calls, events, interrupts
from flowrun.engine import state as states


@dataclasses.dataclass(frozen=True)
class TopicEvents:
    """Worker side: send each TaskEvent to the client as a plain dict."""

    topic: str

    def __call__(self, event: events.TaskEvent) -> None:
        distributed.get_worker().log_event(self.topic, event.to_dict())


@dataclasses.dataclass(frozen=True)
class TopicDone:
    """Worker side: send the final record of a TaskCall, tagged with its Dask key."""

    topic: str

    def __call__(self, call: calls.TaskCall, final: states.State, run_count: int) -> None:
        distributed.get_worker().log_event(self.topic, _done_message(call, final, run_count))


def _done_message(call: calls.TaskCall, final: states.State, run_count: int) -> dict[str, Any]:
    slug = call.task.slug or call.task.name
    message = events.event_for(slug, call.map_index, final, run_count).to_dict()
    message.update(key=call.key, done=True)
    return message


class Opaque:
    """Keeps Dask from walking into (and rebuilding) an argument it need not look at."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return Opaque, (self.value,)


def plain(item: Any) -> Any:
    if isinstance(item, Opaque):
        return item.value
    if isinstance(item, list):
        return [plain(i) for i in item]
    return item


def run_on_worker(
    call: Opaque, state: Opaque, upstream: list[Any], reduced: list[Any], state_result: Any
) -> states.State:
    return calls.run_task(call.value, state.value, plain(upstream), plain(reduced), state_result)


def run_child_on_worker(
    base: Opaque, child: tuple[Any, ...], upstream: list[Any], reduced: list[Any]
) -> states.State:
    index, key, slice_here, state, state_result = child
    call = dataclasses.replace(base.value, map_index=index, key=key, slice_here=slice_here)
    return calls.run_task(call, state.value, plain(upstream), plain(reduced), state_result)


def run_segment(
    members: Opaque, upstream: list[Any], reduced: list[Any], state_result: Any
) -> list[states.State]:
    """Run a fused linear chain of TaskCalls in order on this worker (see `fusion`).

    Each call still sends its own events and final record. Every call after the first
    takes the previous call's final state where its submission holds a `TaskRef`.
    """
    finals: list[states.State] = []
    for i, (call, state, up, red, result) in enumerate(members.value):
        if interrupts.is_cancelled(call.context.get("flow_run_id")):
            final: states.State = states.Cancelled("Task was cancelled.")
            if call.on_done is not None:
                call.on_done(call, final, 0)
        elif i == 0:
            final = calls.run_task(call, state, plain(upstream), plain(reduced), state_result)
        else:
            previous = finals[-1]
            inputs = [previous if isinstance(u, TaskRef) else plain(u) for u in up]
            final = calls.run_task(call, state, inputs, plain(red), result)
        finals.append(final)
    return finals


def describe(final: states.State, key: str) -> dict[str, Any]:
    """Fallback record, computed on a worker, if a final event went missing."""
    return {**events.event_for("", None, final, 0).to_dict(), "key": key, "done": True}


def _carry_dask_task() -> AbstractContextManager[Any] | None:
    """Task code runs in an `interrupts` task thread: give it the Dask task of the worker
    thread that waits for it, so `get_worker().get_current_task()` and the like work."""
    try:
        worker = distributed.get_worker()
    except ValueError:
        return None  # not on a worker
    key = worker.active_threads.get(threading.get_ident())
    if key is None:
        return None
    state = dict(vars(thread_state))
    return _as_task(worker, key, state)


@contextmanager
def _as_task(worker: Any, key: Any, state: dict[str, Any]) -> Iterator[None]:
    ident = threading.get_ident()
    with worker.active_threads_lock:
        worker.active_threads[ident] = key
    vars(thread_state).update(state)
    try:
        yield
    finally:
        vars(thread_state).clear()
        with worker.active_threads_lock:
            worker.active_threads.pop(ident, None)


interrupts.thread_carriers.append(_carry_dask_task)


def _report_abandoned(label: str, scope: str | None) -> None:
    """Tell the run's client that this worker abandoned a stuck task thread."""
    if scope is None:
        return
    try:
        worker = distributed.get_worker()
    except ValueError:
        return
    message = {"abandoned": True, "task": label, "worker": worker.address}
    worker.log_event(f"flowrun-{scope}", message)


interrupts.abandon_hooks.append(_report_abandoned)
