"""The client side of DaskExecutor: one flow run's submissions, records and events.

The client learns how each task ended from plain event dicts that workers log under a
per-run topic (`Worker.log_event` -> `Client.subscribe_topic`): it never unpickles task
results, except for `return_tasks`. The same topic carries live TaskEvents (Running, ...)
to the `on_task_state` callback.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import distributed
from dask._task_spec import TaskRef
from distributed.scheduler import KilledWorker

from flowrun.engine import calls, events, interrupts
from flowrun.engine import state as states
from flowrun.engine.executors import base, dask_graph
from flowrun.engine.executors import dask_batches as batches
from flowrun.engine.executors import dask_deaths as deaths
from flowrun.engine.executors.dask_publish import Publisher, worth_publishing
from flowrun.engine.executors.dask_worker import (
    Opaque,
    TopicDone,
    TopicEvents,
    describe,
    run_child_on_worker,
)

log = logging.getLogger("flowrun.engine")

# A finished future whose final event has not arrived after this long is asked directly.
EVENT_GRACE = 10.0


@dataclasses.dataclass(frozen=True)
class Pending:
    """A submission not yet sent to the scheduler (see `DaskSession.flush`)."""

    key: str


class DaskSession:
    """One flow run's submissions, records and events on one Client."""

    def __init__(
        self,
        client: Any,
        *,
        run_id: str,
        on_task_state: events.OnTaskState | None,
        publish_prefix: str | None,
        restart_stuck_workers: bool = False,
        map_batch_size: int | None = None,
    ) -> None:
        self.client = client
        self.map_batch_size = map_batch_size
        self.threads: int | None = None
        self.map_priority = 0
        self.restart_stuck_workers = restart_stuck_workers
        self.run_id = run_id
        self.topic = f"flowrun-{run_id}"
        self.callback = base.safe_callback(on_task_state)
        self.publisher = Publisher(client, publish_prefix)
        self.cond = threading.Condition()
        self.done: dict[str, Mapping[str, Any]] = {}
        self.records: dict[str, states.State] = {}
        self.futures: dict[str, Any] = {}
        self.names: dict[str, tuple[str, int | None]] = {}
        self.queue: collections.deque[events.TaskEvent] = collections.deque()
        self.finished_at: dict[str, float] = {}
        self.cancelled = False
        self.spared: set[str] = set()
        self.unsent: dict[str, tuple[Any, ...]] = {}
        self.fusable: set[str] = set()
        self.token = uuid.uuid4().hex[:12]
        self.counter = 0
        self.siblings: dict[str, tuple[str, int]] = {}  # key -> (its batch's key, offset)
        self.attempts: dict[str, tuple[Any, int]] = {}  # key -> (its task, which run)
        self.deaths = deaths.Deaths(client)  # why a worker died, from its nanny
        client.subscribe_topic(self.topic, self._on_message)

    def close(self) -> None:
        self.client.unsubscribe_topic(self.topic)
        self.deaths.close()

    def _on_message(self, event: tuple[float, Any]) -> None:
        message = event[1]
        for one in message.get("batch", (message,)):
            self._on_one(one)

    def _on_one(self, message: Mapping[str, Any]) -> None:
        if message.get("abandoned"):
            self._on_abandoned(message)
        elif message.get("key") in self.done:
            # A batch that Dask ran again (its worker died) reports its finished children
            # again: they were reported already, once is what the callback and records get.
            return
        elif message.get("done"):
            # Reported before the record is visible: whoever sees the record then publishes.
            self.publisher.report(message["key"], worth_publishing(message))
            with self.cond:
                self.done[message["key"]] = message
                self.cond.notify_all()
        elif self.callback is not None:
            self.queue.append(events.TaskEvent.from_dict(message))
            with self.cond:
                self.cond.notify_all()

    def _on_abandoned(self, message: Mapping[str, Any]) -> None:
        """A worker gave up on a task thread stuck in a blocking call (see `interrupts`)."""
        interrupts.count_abandoned_elsewhere()
        worker = message.get("worker")
        if not self.restart_stuck_workers or not worker:
            return
        log.warning(
            "restarting Dask worker %s: task %s left a thread stuck", worker, message.get("task")
        )
        # Not from this callback: it runs on the client's event loop, which the call needs.
        threading.Thread(
            target=self.client.restart_workers,
            args=([worker],),
            kwargs={"raise_for_error": False},
            name="flowrun-restart-worker",
            daemon=True,
        ).start()

    # -- submitting -----------------------------------------------------------------------
    # Submissions of one sweep are collected as a Dask graph and sent in one message at
    # `flush()`: one scheduler update for a thousand tasks instead of a thousand. A linear
    # chain among them runs as one Dask task (`fusion`): one scheduler round trip, not one
    # per task, while every call still sends its own events and has its own future.
    def _prepare(self, call: calls.TaskCall, state: Any) -> tuple[calls.TaskCall, Any, Any]:
        slug = call.task.slug or call.task.name
        suffix = "" if call.map_index is None else f"[{call.map_index}]"
        self.counter += 1
        key = f"{slug}-{self.token}-{self.counter}{suffix}"  # index last: see dask_batches
        self.names[key] = (slug, call.map_index)
        self.attempts[key] = (call.task, deaths.attempt(state))
        call = dataclasses.replace(
            call,
            key=key,
            on_event=TopicEvents(self.topic) if self.callback is not None else None,
            on_done=TopicDone(self.topic),
        )
        state_result = None
        if isinstance(state, states.State) and isinstance(
            state.result, distributed.Future | batches.Picked
        ):
            state, state_result = state.replace(result=None), self._arg(state.result)
        return call, state, state_result

    def _arg(self, item: Any) -> Any:
        """A submission argument: futures and pending handles stay visible to Dask."""
        item = self._own(item)
        if isinstance(item, Pending):
            future = self.futures.get(item.key)
            return future if future is not None else TaskRef(item.key)
        if isinstance(item, batches.BatchChild):
            return batches.pick_marker(self.futures[item.batch], item.offset)
        if isinstance(item, batches.Picked):
            return batches.pick_marker(item.future, item.offset)
        if isinstance(item, list):
            if any(batches.is_batched(i) for i in item):
                return batches.picks_marker(item, self._source)
            return [self._arg(i) for i in item]
        if isinstance(item, TaskRef | distributed.Future) or item is None:
            return item
        return Opaque(item)

    def _source(self, item: Any) -> tuple[Any, int | None, Any]:
        """Where a reduce finds one child: (source for Dask, offset or None, dedup key)."""
        if isinstance(item, batches.BatchChild):
            return self.futures[item.batch], item.offset, item.batch
        if isinstance(item, batches.Picked):
            return item.future, item.offset, item.future.key
        found = self._arg(item)
        return found, None, found.key if isinstance(found, distributed.Future) else None

    def submit_call(
        self, call: calls.TaskCall, state: Any, upstream: list[Any], reduced: list[Any]
    ) -> Any:
        call, state, state_result = self._prepare(call, state)
        key = call.key or ""
        args = (Opaque(call), Opaque(state), self._arg(upstream), self._arg(reduced), state_result)
        self.unsent[key] = args
        if not call.is_mapped_parent and call.map_index is None:
            self.fusable.add(key)
        return Pending(key)

    def flush(self) -> None:
        if not self.unsent:
            return
        unsent, self.unsent = self.unsent, {}
        built = dask_graph.build(unsent, self.fusable, self._name_new, self._batch_size)
        for key, (batch, offset) in built.siblings.items():
            self.siblings[key] = (batch, offset)
            self.publisher.track_sibling(key, batch, offset)
        self.fusable.difference_update(unsent)
        keys = list(dict.fromkeys(built.wanted.get(k, k) for k in unsent))
        try:
            sent = self.client.get(built.graph, keys, sync=False)
        except TypeError as exc:
            raise _unpicklable(exc) from exc
        futures = dict(zip(keys, sent, strict=True))
        for key in unsent:
            own = self.siblings[key][0] if key in self.siblings else key
            self.futures[own] = futures[built.wanted.get(key, key)]

    def _name_new(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}-{self.token}-{self.counter}"

    def submit_children(
        self,
        calls_: Sequence[calls.TaskCall],
        states_: Sequence[Any],
        inputs: Sequence[tuple[list[Any], list[Any]]],
    ) -> list[Any]:
        self.flush()
        prepared = [self._prepare(c, s) for c, s in zip(calls_, states_, strict=True)]
        if not prepared:
            return []
        base = dataclasses.replace(prepared[0][0], map_index=None, key=None, slice_here=())
        size = self._batch_size(len(prepared), base)
        if size > 1:  # few tasks: each carries the common part (no scattered data to lose)
            return batches.submit(self, Opaque(base), prepared, inputs, size)
        # Children share everything but their index: ship the common part once, to every
        # worker, so that it outlives a worker that dies.
        [shared] = self.client.scatter([Opaque(base)], hash=False, broadcast=True)
        futures: list[Any] = self.client.map(
            run_child_on_worker,
            [shared] * len(prepared),
            [(p[0].map_index, p[0].key, p[0].slice_here, Opaque(p[1]), p[2]) for p in prepared],
            [self._arg(i[0]) for i in inputs],
            [self._arg(i[1]) for i in inputs],
            key=[p[0].key for p in prepared],
            pure=False,
        )
        for future in futures:
            self.futures[future.key] = future
        return futures

    def _batch_size(self, n: int, call: calls.TaskCall | None = None) -> int:
        forced = getattr(call and call.task, "map_batch_size", None) or self.map_batch_size
        if self.threads is None:
            self.threads = sum(self.client.nthreads().values())
        return batches.batch_size(n, self.threads, forced if call is not None else None)

    def _own(self, handle: Any) -> Any:
        """A sibling's handle as a place in its batch (see `flush`)."""
        if isinstance(handle, Pending) and handle.key in self.siblings:
            return batches.BatchChild(handle.key, *self.siblings[handle.key])
        return handle

    # -- records --------------------------------------------------------------------------
    def record(self, handle: Any) -> states.State | None:
        if isinstance(handle, states.State):
            return handle
        handle = self._own(handle)
        key = handle.key
        found = self.records.get(key)
        if found is not None:
            return found
        batched = isinstance(handle, batches.BatchChild)
        future = self.futures.get(handle.batch if batched else key)
        if future is None:
            return states.Cancelled("Task was cancelled.") if self.cancelled else None
        offset = handle.offset if batched else None
        with self.cond:
            raw = self.done.get(key)
        if raw is None:
            raw = self._without_event(future, key, offset)
            if raw is None:
                return None
            if isinstance(raw, dict):  # no final event came: publish from this record
                self.publisher.report(key, worth_publishing(raw))
        if isinstance(raw, states.State):
            found = raw
        else:
            result = future if offset is None else batches.Picked(future, offset)
            found = events.state_of(raw, result)
        self.records[key] = found
        return found

    def _without_event(self, future: Any, key: str, offset: int | None) -> Any:
        status = future.status
        if status == "pending" and future.key in self.spared:
            return None  # a batch ending its children Cancelled itself: wait for its records
        lost = status == "cancelled" and not self.cancelled
        if lost and deaths.cancel_reason(future) == deaths.SCHEDULER_LOST:
            raise self._scheduler_lost()
        if status == "cancelled" or (self.cancelled and status != "finished"):
            return states.Cancelled("Task was cancelled.")
        if status == "error":
            exc = future.exception(timeout=5)
            if isinstance(exc, KilledWorker):  # its worker died: retry as max_retries says
                task, run_count = self.attempts.get(key, (None, 1))
                found = self.deaths.lost_state(exc.last_worker, task, run_count)
                return self._announce(key, found, run_count)
            return states.Failed(f"Task could not run on the cluster: {type(exc).__name__}: {exc}")
        if status == "finished":
            first = self.finished_at.setdefault(key, time.monotonic())
            if time.monotonic() - first > EVENT_GRACE:
                return self.client.submit(describe, future, key, offset, pure=False).result()
        return None

    def _scheduler_lost(self) -> base.SchedulerLost:
        """Every task not finished is lost with the scheduler: each says so, and the run ends."""
        lost = states.Failed(deaths.scheduler_lost_message(self.client))
        with self.cond:
            unfinished = [k for k in self.names if k not in self.records and k not in self.done]
        for key in unfinished:
            self.records[key] = self._announce(key, lost, self.attempts.get(key, (None, 1))[1])
        while self.queue and self.callback is not None:  # nothing to publish to any more
            self.callback(self.queue.popleft())
        return base.SchedulerLost(lost.message)

    def _announce(self, key: str, found: states.State, run_count: int) -> states.State:
        """A state decided here, not on a worker: the status hears of it like the others."""
        if self.callback is not None:
            slug, index = self.names.get(key, (key, None))
            self.queue.append(events.event_for(slug, index, found, run_count))
        return found

    def track_batch(self, key: str, name: str, children: list[str | None]) -> None:
        self.publisher.track_batch(key, name, children)

    def _name(self, key: str) -> str:
        slug, index = self.names.get(key, (key, None))
        return slug if index is None else f"{slug}[{index}]"

    def wait_some(self, handles: Sequence[Any], timeout: float) -> None:
        with self.cond:
            if not self.queue:
                self.cond.wait(timeout)

    def drain_events(self) -> None:
        # Published first: a task that status shows finished is then found by a resume.
        self.publisher.flush(self.futures, self._name)
        while self.queue and self.callback is not None:
            self.callback(self.queue.popleft())

    def as_upstream(self, given: states.State) -> Any:
        if isinstance(given.result, distributed.Future | batches.Picked):
            return given.result
        if isinstance(given, states.Mapped):
            return given.replace(map_states=(), result=None, n_map_states=given.n_map_states)
        return given

    def resolve(self, record: states.State) -> states.State:
        """Fetch result values into the client (for return_tasks only)."""
        if isinstance(record, states.Mapped):
            kids = record.map_states
            fetched = batches.fetch_children(self.client, kids)
            children = tuple(
                c.replace(result=calls.as_state(fetched[i]).result)
                if i in fetched
                else self.resolve(c)
                for i, c in enumerate(kids)
            )
            return record.replace(map_states=children, result=[c.result for c in children])
        if isinstance(record.result, distributed.Future | batches.Picked):
            [found] = batches.fetch_children(self.client, [record]).values() or [None]
            return record.replace(result=None if found is None else calls.as_state(found).result)
        return record

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
        # Drop everything not finished first, so no downstream task starts when the
        # running ones end; then interrupt the threads that still run task code.
        self.unsent.clear()
        self.spared = self.publisher.running_batches()
        with self.cond:  # finished, but pending while its fused chain runs: keep its value
            kept = self.spared | {k for k, m in self.done.items() if m.get("is_finished")}
        pending = [f for k, f in self.futures.items() if f.status == "pending" and k not in kept]
        if pending:
            self.client.cancel(pending)
        self.client.run(interrupts.cancel_scope, self.run_id)
        with self.cond:
            self.cond.notify_all()


def _unpicklable(exc: TypeError) -> TypeError:
    """Dask wraps a pickling error in one naming its graph type ("Could not serialize
    object of type LLGExpr"), which tells nothing: the innermost TypeError says what
    could not be pickled (as Prefect's runs report it)."""
    inner: BaseException = exc
    while isinstance(inner.__cause__, TypeError):
        inner = inner.__cause__
    return TypeError(*inner.args)
