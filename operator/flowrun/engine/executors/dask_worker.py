"""The worker side of DaskExecutor: what runs inside a Dask task on a worker.

Task code runs here through `calls.run_task`; events and final records go back to the
client as plain dicts on the run's topic (`Worker.log_event`), never as pickled results.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import distributed
from dask._task_spec import TaskRef
from distributed.threadpoolexecutor import thread_state

from flowrun.engine import calls, events, interrupts
from flowrun.engine import state as states
from flowrun.engine.executors.dask_progress import Progress


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

    def __dask_tokenize__(self) -> int:
        # Keys are named by the session; Dask need not hash (or pickle) the value for one.
        return id(self)


# Marker keys of the dicts that stand for mapped children run in batches (see
# `dask_batches`): Dask resolves the batch futures inside, the worker picks the children.
PICK = "__flowrun_pick__"  # {PICK: offset, "batch": <batch future>}: one child's state
# {PICKS: Opaque([(source, offset or None)]), "sources": [batch futures, other handles]}:
# a list of children (what a reduce receives), each picked from a batch or taken whole.
PICKS = "__flowrun_picks__"


def plain(item: Any) -> Any:
    """A submission argument as the task runner takes it (see `DaskSession._arg`)."""
    if isinstance(item, Opaque):
        return item.value
    if isinstance(item, list):
        return [plain(i) for i in item]
    if isinstance(item, dict) and PICK in item:
        return item["batch"][item[PICK]]
    if isinstance(item, dict) and PICKS in item:
        sources = item["sources"]
        return [
            plain(sources[s]) if offset is None else sources[s][offset]
            for s, offset in item[PICKS].value
        ]
    return item


def run_on_worker(
    call: Opaque, state: Opaque, upstream: list[Any], reduced: list[Any], state_result: Any
) -> states.State:
    return calls.run_task(
        call.value, state.value, plain(upstream), plain(reduced), plain(state_result)
    )


def run_child_on_worker(
    base: Opaque, child: tuple[Any, ...], upstream: list[Any], reduced: list[Any]
) -> states.State:
    index, key, slice_here, state, state_result = child
    call = dataclasses.replace(base.value, map_index=index, key=key, slice_here=slice_here)
    return calls.run_task(call, state.value, plain(upstream), plain(reduced), plain(state_result))


class BatchSink:
    """Collects a batch's events and final records; sends them as one message per
    `interval` seconds and at the end, instead of one message per state change."""

    def __init__(self, topic: str, interval: float = 0.5) -> None:
        self.topic = topic
        self.interval = interval
        self.buffer: list[dict[str, Any]] = []
        self.sent = time.monotonic()

    def event(self, key: str | None, event: events.TaskEvent) -> None:
        # Tagged with the child's key, so that the client can drop what a re-run repeats.
        self.buffer.append({**event.to_dict(), "key": key})

    def done(self, call: calls.TaskCall, final: states.State, run_count: int) -> None:
        self.buffer.append(_done_message(call, final, run_count))
        if time.monotonic() - self.sent > self.interval:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            distributed.get_worker().log_event(self.topic, {"batch": self.buffer})
            self.buffer = []
        self.sent = time.monotonic()


def run_batch(
    base: Opaque,
    children: Opaque,
    upstreams: list[Any],
    reduceds: list[Any],
    state_results: list[Any],
    *,
    publish_as: str | None = None,
) -> list[states.State]:
    """Run a contiguous slice of a mapped task's children, each through its own
    TaskRunner, in order; return their final states (what downstream children pick).

    `publish_as` (`<prefix><slug>`): where the finished children are published if the
    batch's client leaves while it runs (`dask_progress`)."""
    call0: calls.TaskCall = base.value
    members = [
        (dataclasses.replace(call0, map_index=index, key=key, slice_here=here), state)
        for index, key, here, state in children.value
    ]
    return _run_members(members, upstreams, reduceds, state_results, publish_as)


def run_siblings(
    members: Opaque, upstreams: list[Any], reduceds: list[Any], state_results: list[Any]
) -> list[states.State]:
    """Run independent TaskCalls that wait for the same tasks (the branches of a fan-out)
    in order, as one Dask task; each keeps its own TaskRunner, events and final state."""
    return _run_members(members.value, upstreams, reduceds, state_results)


def _run_members(
    members: list[tuple[calls.TaskCall, Any]],
    upstreams: list[Any],
    reduceds: list[Any],
    state_results: list[Any],
    publish_as: str | None = None,
) -> list[states.State]:
    first = members[0][0]
    scope = first.context.get("flow_run_id")
    sink = BatchSink(first.on_done.topic if isinstance(first.on_done, TopicDone) else "")
    progress = Progress(publish_as)
    finals: list[states.State] = []
    dropped = False
    try:
        for i, (given, state) in enumerate(members):
            on_event = given.on_event and functools.partial(sink.event, given.key)
            call = dataclasses.replace(given, on_event=on_event, on_done=sink.done)
            if not dropped and progress.dropped():
                # The client left: keep what finished, start no other child (a resuming
                # client runs them, and a user's side effects do not happen twice).
                dropped = True
                progress.publish()
            if dropped or interrupts.is_cancelled(scope):
                final: states.State = states.Cancelled("Task was cancelled.")
                sink.done(call, final, 0)
            else:
                up, red, result = (plain(x[i]) for x in (upstreams, reduceds, state_results))
                final = calls.run_task(call, state, up, red, result)
                progress.add(call.map_index, final)
            finals.append(final)
        if progress.dropped():  # dropped while its last child ran
            progress.publish()
    finally:
        progress.close()
        sink.flush()
    return finals


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
            final = calls.run_task(
                call, state, plain(upstream), plain(reduced), plain(state_result)
            )
        else:
            previous = finals[-1]
            inputs = [previous if isinstance(u, TaskRef) else plain(u) for u in up]
            final = calls.run_task(call, state, inputs, plain(red), plain(result))
        finals.append(final)
    return finals


def describe(final: Any, key: str, offset: int | None = None) -> dict[str, Any]:
    """Fallback record, computed on a worker, if a final event went missing (`offset`:
    the child's place in its batch's result)."""
    found: states.State = final if offset is None else final[offset]
    return {**events.event_for("", None, found, 0).to_dict(), "key": key, "done": True}


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
