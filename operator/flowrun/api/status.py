"""Folds task state changes into a bounded `status` (the controller's and `flowrun run`'s).

The engine reports every task state change as a `TaskEvent`; a 10,000-task flow or a
100,000-child map produces far more than a Kubernetes object can hold (etcd's limit is about
1.5 MiB, and every watcher receives every update). `StatusBuilder` keeps what it needs in memory
(one small record per task, one state name per mapped child) and gives the task part of a status
(`flowrun.runs.render` renders the whole status from it), bounded by `StatusLimits`, not by the
flow:

- `taskCounts`: `total` and the number of tasks per state, always complete;
- `tasks`: one entry per task that has started, failures first, then unfinished tasks, until
  `tasks_bytes` is used up (`tasksOmitted` says how many were left out); a big run's FlowRun
  gets the same ranking within `lean_tasks_bytes` (`tasks(lean=True)`), and the whole bounded
  map goes to its companion ConfigMap (`flowrun.runs.companion`);
- mapped tasks: `children` counts per state and the first `failedChildren` by index;
- messages truncated to `message_chars`; `results` capped per task and in total.

Tasks are the engine's: a flow's Parameters are tasks too, as in Prefect.

Pure: no I/O, no clock (callers pass times), no globals. One builder per run, fed from one
thread (the controller hands events over to its loop; `flowrun run` uses a lock).

    builder = StatusBuilder(["extract", "load"])
    builder.apply(event)                      # for each TaskEvent
    status = flowrun.runs.render.render(builder, phase="Running", now=time.time())
"""

from __future__ import annotations

import calendar
import heapq
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowrun.engine import state as states
from flowrun.engine.events import TaskEvent


def state_names(
    kind: type[states.State], *, but: tuple[type[states.State], ...] = ()
) -> frozenset[str]:
    """The names of the engine's state classes that are a `kind` (and none of `but`): state
    semantics come from the engine's class hierarchy, never from a list written here.

    >>> sorted(state_names(states.Failed))
    ['Failed', 'TimedOut', 'TriggerFailed', 'ValidationFailed']
    """
    return frozenset(
        name
        for name, cls in states.BY_NAME.items()
        if issubclass(cls, kind) and not issubclass(cls, but)
    )


FAILED_STATES = state_names(states.Failed)
FINISHED_STATES = state_names(states.Finished)
# Finished states a restarted run can trust from status alone (Cancelled tasks run again; a
# Mapped or Looped parent is only as finished as children status does not hold).
RESUMABLE_STATES = state_names(states.Finished, but=(states.Cancelled, states.Mapped,
                                                     states.Looped))  # fmt: skip
# Their messages are the engine's boilerplate ("Task run succeeded."): not worth the bytes.
QUIET_STATES = frozenset(c.__name__ for c in (states.Running, states.Success, states.Mapped))
PENDING = states.Pending.__name__


@dataclass(frozen=True)
class StatusLimits:
    message_chars: int = 256
    failed_children: int = 5
    tasks_bytes: int = 192 * 1024
    # A big run's FlowRun (the rest is in its companion): every write of the FlowRun costs the
    # API server the whole object; at this size a finished 10,000-task run's write stays within
    # 2x a 1-task FlowRun's (benchmarks/status_task_map.py).
    lean_tasks_bytes: int = 4 * 1024
    result_bytes: int = 16 * 1024
    results_bytes: int = 64 * 1024


def rfc3339(epoch: float) -> str:
    """Seconds-precision UTC, as Kubernetes writes times: `2026-11-23T20:00:00Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def parse_rfc3339(text: str | None) -> float | None:
    if not text:
        return None
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def cap_results(
    values: Mapping[str, Any], limits: StatusLimits | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The one results cap: results that are JSON and small enough (each, and all together);
    the names of the others, for `resultsOmitted`. A `None` result is left out: the operator
    writes status as JSON merge patches, in which a null deletes the key."""
    limits = limits or StatusLimits()
    kept: dict[str, Any] = {}
    omitted: list[str] = []
    budget = limits.results_bytes
    for name, value in values.items():
        if value is None:
            continue
        try:
            size = _size(value)
        except (TypeError, ValueError):
            omitted.append(name)
            continue
        if size > limits.result_bytes or size > budget:
            omitted.append(name)
            continue
        budget -= size
        kept[name] = value
    return kept, omitted


@dataclass
class _Children:
    """A mapped task's children: current state per index, counts, failures."""

    states: list[str | None] = field(default_factory=list)
    done: bytearray = field(default_factory=bytearray)
    n_done: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    failures: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    # Restored counts (`restore`) no index carries yet: a child's first event takes one over.
    unplaced: Counter[str] = field(default_factory=Counter)

    def apply(self, index: int, event: TaskEvent, message: str | None) -> None:
        if index >= len(self.states):
            grow = index + 1 - len(self.states)
            self.states.extend([None] * grow)
            self.done.extend(bytes(grow))
        old = self.states[index]
        if old is None and self.unplaced:  # same state if restored so, else one that ran again
            rank = {k: (k not in FINISHED_STATES, n) for k, n in self.unplaced.items()}
            old = event.state if self.unplaced[event.state] else max(rank, key=rank.__getitem__)
            self.unplaced -= Counter({old: 1})
        if old is not None:
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]
        self.states[index] = event.state
        self.counts[event.state] += 1
        self.n_done += int(event.is_finished) - self.done[index]
        self.done[index] = int(event.is_finished)
        if event.state in FAILED_STATES:
            self.failures[index] = (event.state, message)
        else:
            self.failures.pop(index, None)


@dataclass
class _Task:
    state: str = PENDING
    message: str | None = None
    run_count: int = 0
    start: float | None = None
    end: float | None = None
    finished: bool = False
    seen: bool = False
    n_children: int | None = None
    children: _Children | None = None

    def is_done(self) -> bool:
        if not self.finished:
            return False
        if self.children is None:
            return True
        expected = self.n_children if self.n_children is not None else len(self.children.states)
        return self.children.n_done >= expected

    def n_failed(self) -> int:
        own = int(self.state in FAILED_STATES)
        if self.children is None:
            return own
        return own + sum(self.children.counts[s] for s in FAILED_STATES)

    def priority(self) -> int:
        if self.n_failed():
            return 0
        return 2 if self.is_done() else 1


class StatusBuilder:
    """The status of one run, built from `TaskEvent`s. See the module docstring."""

    def __init__(
        self,
        tasks: Iterable[str] = (),
        *,
        limits: StatusLimits | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.limits = limits or StatusLimits()
        self.redact = redact
        self._tasks: dict[str, _Task] = {}
        self._done = 0
        self._failed = 0
        self.add_tasks(tasks)

    def add_tasks(self, names: Iterable[str]) -> None:
        """Learn task names late (e.g. a `flow.ref` resolved on the cluster); order is kept."""
        for name in names:
            self._tasks.setdefault(name, _Task())

    def state_of(self, name: str) -> str | None:
        """The task's latest reported state; None for a task never seen."""
        task = self._tasks.get(name)
        return task.state if task is not None and task.seen else None

    def _message(self, text: str | None) -> str | None:
        if text is not None and self.redact is not None:
            text = self.redact(text)
        return truncate(text, self.limits.message_chars)

    def apply(self, event: TaskEvent) -> None:
        task = self._tasks.get(event.task)
        if task is None:
            task = self._tasks[event.task] = _Task()
        was_done, was_failed = task.is_done(), task.n_failed()
        self._fold(task, event)
        # Kept incrementally: `done` and `failed` are read on every event by a live view.
        self._done += task.is_done() - was_done
        self._failed += task.n_failed() - was_failed

    def _fold(self, task: _Task, event: TaskEvent) -> None:
        message = self._message(event.message)
        if event.map_index is not None:
            if task.children is None:
                task.children = _Children()
            task.children.apply(event.map_index, event, message)
            return
        task.seen = True
        task.state = event.state
        task.message = message
        task.run_count = max(task.run_count, event.run_count)
        if event.state == "Running" and task.start is None:
            task.start = event.timestamp
        task.finished = event.is_finished
        task.end = event.timestamp if event.is_finished else None
        if event.n_map_states is not None:
            task.n_children = event.n_map_states
            if task.children is None:
                task.children = _Children()

    def restore(self, previous: Mapping[str, Mapping[str, Any]]) -> None:
        """Take over finished tasks from an earlier `status.tasks` (an operator restart).

        Tasks resumed as finished produce no new events, so without this they would look
        Pending again. Unfinished entries are skipped: their tasks run again and report.
        Mapped children come back as counts and failures only.
        """
        for name, entry in previous.items():
            state = entry.get("state")
            if state not in FINISHED_STATES:
                continue
            task = self._tasks.setdefault(name, _Task())
            self._done -= task.is_done()
            self._failed -= task.n_failed()
            task.seen = task.finished = True
            task.state = state
            task.message = entry.get("message")
            task.run_count = int(entry.get("runCount") or 0)
            task.start = parse_rfc3339(entry.get("startTime"))
            task.end = parse_rfc3339(entry.get("endTime"))
            counts = dict(entry.get("children") or {})
            if state == "Mapped":
                total = int(counts.pop("total", 0))
                kids = task.children = _Children(
                    states=[None] * total, done=bytearray(b"\x01" * total), n_done=total
                )
                kids.counts.update({k: int(v) for k, v in counts.items()})
                kids.unplaced.update(kids.counts)
                for child in entry.get("failedChildren") or ():
                    kids.failures[int(child["index"])] = (child["state"], child.get("message"))
                task.n_children = total
            self._done += task.is_done()
            self._failed += task.n_failed()

    def apply_all(self, events: Iterable[TaskEvent]) -> None:
        for event in events:
            self.apply(event)

    @property
    def total(self) -> int:
        return len(self._tasks)

    @property
    def done(self) -> int:
        return self._done

    @property
    def failed(self) -> int:
        return self._failed

    def progress(self) -> str:
        return f"{self.done}/{self.total}"

    def task_counts(self) -> dict[str, int]:
        counts = Counter(t.state for t in self._tasks.values())
        return {"total": self.total, **dict(sorted(counts.items()))}

    def _entry(self, task: _Task) -> dict[str, Any]:
        entry: dict[str, Any] = {"state": task.state}
        if task.message is not None and task.state not in QUIET_STATES:
            entry["message"] = task.message
        if task.run_count:
            entry["runCount"] = task.run_count
        if task.start is not None:
            entry["startTime"] = rfc3339(task.start)
        if task.end is not None:
            entry["endTime"] = rfc3339(task.end)
        kids = task.children
        if kids is not None:
            total = max(task.n_children or 0, len(kids.states))
            entry["children"] = {"total": total, **dict(sorted(kids.counts.items()))}
            first = heapq.nsmallest(self.limits.failed_children, kids.failures.items())
            if first:
                entry["failedChildren"] = [
                    {"index": i, "state": s, **({"message": m} if m is not None else {})}
                    for i, (s, m) in first
                ]
        return entry

    def tasks(self, *, lean: bool = False) -> tuple[dict[str, dict[str, Any]], int]:
        """`status.tasks` within the byte budget (`lean`: a big run's FlowRun's), and how many
        started tasks were left out."""
        started = [(name, t) for name, t in self._tasks.items() if t.seen or t.children is not None]
        order = {name: i for i, (name, _) in enumerate(started)}
        ranked = sorted(started, key=lambda item: (item[1].priority(), order[item[0]]))
        budget = self.limits.lean_tasks_bytes if lean else self.limits.tasks_bytes
        chosen: dict[str, dict[str, Any]] = {}
        for name, task in ranked:
            entry = self._entry(task)
            cost = _size(name) + _size(entry) + 2
            if cost > budget:
                break
            budget -= cost
            chosen[name] = entry
        listed = {name: chosen[name] for name, _ in started if name in chosen}
        return listed, len(started) - len(listed)
