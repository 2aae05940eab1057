"""DaskExecutor: runs TaskCalls on a `distributed` cluster, results staying on the workers.

Downstream tasks receive upstream futures, so data moves worker to worker. The client
learns how each task ended from plain event dicts that workers log under a per-run topic
(`Worker.log_event` -> `Client.subscribe_topic`): it never unpickles task results, except
for `return_tasks`. The same topic carries live TaskEvents (Running, ...) to the
`on_task_state` callback. This is the only module that imports `distributed`.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import operator
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import distributed
from dask._task_spec import Task, TaskRef, parse_input

from flowrun.engine import calls, events, interrupts
from flowrun.engine import state as states
from flowrun.engine.executors import base, fusion
from flowrun.engine.graph import resolve

# A finished future whose final event has not arrived after this long is asked directly.
EVENT_GRACE = 10.0
# Shortest chain worth fusing: a fused chain still takes two hops (the chain, then the
# task that hands out each call's own result), so two calls would gain nothing.
MIN_FUSED = 3


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


@dataclasses.dataclass(frozen=True)
class Pending:
    """A submission not yet sent to the scheduler (see `DaskSession.flush`)."""

    key: str


class Opaque:
    """Keeps Dask from walking into (and rebuilding) an argument it need not look at."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return Opaque, (self.value,)


def _plain(item: Any) -> Any:
    if isinstance(item, Opaque):
        return item.value
    if isinstance(item, list):
        return [_plain(i) for i in item]
    return item


def _run_on_worker(
    call: Opaque, state: Opaque, upstream: list[Any], reduced: list[Any], state_result: Any
) -> states.State:
    return calls.run_task(call.value, state.value, _plain(upstream), _plain(reduced), state_result)


def _run_child_on_worker(
    base: Opaque, child: tuple[Any, ...], upstream: list[Any], reduced: list[Any]
) -> states.State:
    index, key, slice_here, state, state_result = child
    call = dataclasses.replace(base.value, map_index=index, key=key, slice_here=slice_here)
    return calls.run_task(call, state.value, _plain(upstream), _plain(reduced), state_result)


def _run_segment(
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
            final = calls.run_task(call, state, _plain(upstream), _plain(reduced), state_result)
        else:
            previous = finals[-1]
            inputs = [previous if isinstance(u, TaskRef) else _plain(u) for u in up]
            final = calls.run_task(call, state, inputs, _plain(red), result)
        finals.append(final)
    return finals


def _dependencies(upstream: Any, reduced: Any, state_result: Any) -> set[str]:
    """Keys of the TaskRefs and futures a submission waits for."""
    found: set[str] = set()
    stack = [upstream, reduced, state_result]
    while stack:
        item = stack.pop()
        if isinstance(item, Opaque):
            item = item.value
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, TaskRef | distributed.Future):
            found.add(str(item.key))
    return found


def _renamed(item: Any, alias: Mapping[str, str]) -> Any:
    if isinstance(item, TaskRef) and item.key in alias:
        return TaskRef(alias[str(item.key)])
    if isinstance(item, list):
        return [_renamed(i, alias) for i in item]
    return item


def _describe(final: states.State, key: str) -> dict[str, Any]:
    """Fallback record, computed on a worker, if a final event went missing."""
    return {**events.event_for("", None, final, 0).to_dict(), "key": key, "done": True}


def _record(raw: Mapping[str, Any], result: Any) -> states.State:
    cls = states.BY_NAME.get(raw["state"], states.State)
    kwargs: dict[str, Any] = {"result": result}
    if issubclass(cls, states.Scheduled):
        start = raw.get("start_time")
        kwargs["start_time"] = None if start is None else dt.datetime.fromtimestamp(start, dt.UTC)
    if issubclass(cls, states.Retrying):
        kwargs["run_count"] = raw.get("run_count") or 0
    if issubclass(cls, states.Mapped):
        kwargs["n_map_states"] = raw.get("n_map_states") or 0
        kwargs["result"] = None
    return cls(raw.get("message"), **kwargs)


class DaskSession:
    """One flow run's submissions, records and events on one Client."""

    def __init__(
        self,
        client: Any,
        *,
        run_id: str,
        on_task_state: events.OnTaskState | None,
        publish_prefix: str | None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.topic = f"flowrun-{run_id}"
        self.callback = base.safe_callback(on_task_state)
        self.publish_prefix = publish_prefix
        self.cond = threading.Condition()
        self.done: dict[str, Mapping[str, Any]] = {}
        self.records: dict[str, states.State] = {}
        self.futures: dict[str, Any] = {}
        self.names: dict[str, tuple[str, int | None]] = {}
        self.queue: collections.deque[events.TaskEvent] = collections.deque()
        self.finished_at: dict[str, float] = {}
        self.cancelled = False
        self.unsent: dict[str, tuple[Any, ...]] = {}
        self.fusable: set[str] = set()
        self.token = uuid.uuid4().hex[:12]
        self.counter = 0
        client.subscribe_topic(self.topic, self._on_message)

    def close(self) -> None:
        self.client.unsubscribe_topic(self.topic)

    def _on_message(self, event: tuple[float, Any]) -> None:
        message = event[1]
        if message.get("done"):
            with self.cond:
                self.done[message["key"]] = message
                self.cond.notify_all()
        elif self.callback is not None:
            self.queue.append(events.TaskEvent.from_dict(message))
            with self.cond:
                self.cond.notify_all()

    # -- submitting -----------------------------------------------------------------------
    # Submissions of one sweep are collected as a Dask graph and sent in one message at
    # `flush()`: one scheduler update for a thousand tasks instead of a thousand. A linear
    # chain among them runs as one Dask task (`fusion`): one scheduler round trip, not one
    # per task, while every call still sends its own events and has its own future.
    def _prepare(self, call: calls.TaskCall, state: Any) -> tuple[calls.TaskCall, Any, Any]:
        slug = call.task.slug or call.task.name
        suffix = "" if call.map_index is None else f"[{call.map_index}]"
        self.counter += 1
        key = f"{slug}{suffix}-{self.token}-{self.counter}"
        self.names[key] = (slug, call.map_index)
        call = dataclasses.replace(
            call,
            key=key,
            on_event=TopicEvents(self.topic) if self.callback is not None else None,
            on_done=TopicDone(self.topic),
        )
        state_result = None
        if isinstance(state, states.State) and isinstance(state.result, distributed.Future):
            state, state_result = state.replace(result=None), state.result
        return call, state, state_result

    def _arg(self, item: Any) -> Any:
        """A submission argument: futures and pending handles stay visible to Dask."""
        if isinstance(item, Pending):
            future = self.futures.get(item.key)
            return future if future is not None else TaskRef(item.key)
        if isinstance(item, list):
            return [self._arg(i) for i in item]
        if isinstance(item, TaskRef) or item is None:
            return item
        return Opaque(item)

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
        deps = {key: _dependencies(*args[2:]) for key, args in unsent.items()}
        # A fused call's own key names an item of its segment's result. That item task is
        # renamed, so the scheduler's duration estimates per task name stay those of real runs.
        alias: dict[str, str] = {}
        graph: dict[str, Task] = {}
        for segment in fusion.linear_segments(deps, self.fusable):
            if len(segment) < MIN_FUSED:
                continue
            self.counter += 1
            fused = f"fused-{self.token}-{self.counter}"
            for i, key in enumerate(segment):
                alias[key] = f"fused-{key}"
                graph[alias[key]] = Task(alias[key], operator.getitem, TaskRef(fused), i)
            # The head's inputs go to Dask as arguments; the others' only name the previous key.
            head = unsent[segment[0]]
            members = [(head[0].value, head[1].value, None, None, None)]
            for key in segment[1:]:
                call, state, upstream, reduced, state_result = unsent[key]
                members.append((call.value, state.value, upstream, reduced, state_result))
            inputs = (parse_input(_renamed(a, alias)) for a in head[2:])
            graph[fused] = Task(fused, _run_segment, Opaque(members), *inputs)
        for key, args in unsent.items():
            if key not in alias:
                inputs = (parse_input(_renamed(a, alias)) for a in args)
                graph[key] = Task(key, _run_on_worker, *inputs)
        self.fusable.difference_update(unsent)
        keys = list(unsent)
        futures = self.client.get(graph, [alias.get(k, k) for k in keys], sync=False)
        for key, future in zip(keys, futures, strict=True):
            self.futures[key] = future

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
        # Children share everything but their index: ship the common part once.
        base = dataclasses.replace(prepared[0][0], map_index=None, key=None, slice_here=())
        [shared] = self.client.scatter([Opaque(base)], hash=False)
        futures: list[Any] = self.client.map(
            _run_child_on_worker,
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

    # -- records --------------------------------------------------------------------------
    def record(self, handle: Any) -> states.State | None:
        if isinstance(handle, states.State):
            return handle
        key = handle.key
        found = self.records.get(key)
        if found is not None:
            return found
        future = self.futures.get(key)
        if future is None:
            return states.Cancelled("Task was cancelled.") if self.cancelled else None
        with self.cond:
            raw = self.done.get(key)
        if raw is None:
            raw = self._without_event(future)
            if raw is None:
                return None
        if isinstance(raw, states.State):
            found = raw
        else:
            found = _record(raw, future)
            self._publish(key, future, found)
        self.records[key] = found
        return found

    def _without_event(self, future: Any) -> Any:
        status = future.status
        if status == "cancelled" or (self.cancelled and status != "finished"):
            return states.Cancelled("Task was cancelled.")
        if status == "error":
            exc = future.exception(timeout=5)
            return states.Failed(f"Task could not run on the cluster: {type(exc).__name__}: {exc}")
        if status == "finished":
            first = self.finished_at.setdefault(future.key, time.monotonic())
            if time.monotonic() - first > EVENT_GRACE:
                return self.client.submit(_describe, future, future.key, pure=False).result()
        return None

    def _publish(self, key: str, future: Any, record: states.State) -> None:
        if self.publish_prefix is None or not record.is_finished():
            return
        slug, index = self.names.get(key, (key, None))
        name = f"{self.publish_prefix}{slug}" + ("" if index is None else f"[{index}]")
        self.client.publish_dataset(future, name=name, override=True)

    def wait_some(self, handles: Sequence[Any], timeout: float) -> None:
        with self.cond:
            if not self.queue:
                self.cond.wait(timeout)

    def drain_events(self) -> None:
        while self.queue and self.callback is not None:
            self.callback(self.queue.popleft())

    def as_upstream(self, given: states.State) -> Any:
        if isinstance(given.result, distributed.Future):
            return given.result
        if isinstance(given, states.Mapped):
            return given.replace(map_states=(), result=None, n_map_states=given.n_map_states)
        return given

    def resolve(self, record: states.State) -> states.State:
        """Fetch result values into the client (for return_tasks only)."""
        if isinstance(record, states.Mapped):
            # One gather for all children, not a round trip each.
            kids = record.map_states
            live = [
                i
                for i, c in enumerate(kids)
                if isinstance(c.result, distributed.Future) and c.result.status == "finished"
            ]
            values = self.client.gather([kids[i].result for i in live])
            fetched = dict(zip(live, values, strict=True))
            children = tuple(
                c.replace(result=calls.as_state(fetched[i]).result)
                if i in fetched
                else self.resolve(c)
                for i, c in enumerate(kids)
            )
            return record.replace(map_states=children, result=[c.result for c in children])
        if isinstance(record.result, distributed.Future):
            if record.result.status in ("cancelled", "error", "lost"):
                return record.replace(result=None)
            full = calls.as_state(record.result.result())
            return record.replace(result=full.result)
        return record

    def cancel(self) -> None:
        # Once only: a second interrupt could land in the task's own cleanup code.
        with self.cond:
            if self.cancelled:
                return
            self.cancelled = True
        # Drop everything not finished first, so no downstream task starts when the
        # running ones end; then interrupt the threads that still run task code.
        self.unsent.clear()
        pending = [f for f in self.futures.values() if f.status == "pending"]
        if pending:
            self.client.cancel(pending)
        self.client.run(interrupts.cancel_scope, self.run_id)
        with self.cond:
            self.cond.notify_all()


class DaskExecutor:
    """Run on a distributed cluster: an existing one (`address`) or one it creates.

    >>> DaskExecutor(address="tcp://scheduler:8786")                  # doctest: +SKIP
    >>> DaskExecutor(cluster_kwargs={"n_workers": 2})                 # doctest: +SKIP

    With `publish_prefix="run-1/"`, each finished task's result future is published as the
    dataset `run-1/<slug>`, so a later client can resume from it.
    """

    def __init__(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        address: str | None = None,
        cluster_class: Callable[..., Any] | str | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        adapt_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        publish_prefix: str | None = None,
    ) -> None:
        if address is not None and (cluster_class is not None or cluster_kwargs):
            raise ValueError("Give either an address or a cluster_class/cluster_kwargs, not both.")
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = adapt_kwargs
        self.client_kwargs = dict(client_kwargs or {})
        self.publish_prefix = publish_prefix
        self.client: Any | None = None

    @contextmanager
    def start(self) -> Iterator[Any]:
        if self.client is not None:
            # Already started by the caller (e.g. to fetch published futures): reuse it.
            yield self.client
            return
        cluster = None
        address: Any = self.address
        if address is None:
            factory = self.cluster_class or distributed.LocalCluster
            if isinstance(factory, str):
                factory = resolve(factory)
            cluster = factory(**self.cluster_kwargs)
            if self.adapt_kwargs:
                cluster.adapt(**self.adapt_kwargs)
            address = cluster
        client: Any = distributed.Client(  # type: ignore[no-untyped-call]
            address, set_as_default=False, **self.client_kwargs
        )
        self.client = client
        try:
            yield client
        finally:
            self.client = None
            client.close()
            if cluster is not None:
                cluster.close()

    def _client(self) -> Any:
        if self.client is None:
            raise RuntimeError("DaskExecutor is not started: use `with executor.start():`")
        return self.client

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._client().submit(fn, *args, pure=False, **kwargs)

    def wait(self, futures: Any) -> Any:
        return self._client().gather(futures)

    @contextmanager
    def session(
        self, *, run_id: str, on_task_state: events.OnTaskState | None
    ) -> Iterator[DaskSession]:
        session = DaskSession(
            self._client(),
            run_id=run_id,
            on_task_state=on_task_state,
            publish_prefix=self.publish_prefix,
        )
        try:
            yield session
        finally:
            session.close()
