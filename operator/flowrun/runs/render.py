"""The one status renderer: a run's `status`, whole (`flowrun run`) or as merge patches (operator).

A status is three parts, each rendered here once:

- the phase part (`phase_fragment`): phase, message, times, kstatus conditions, generation;
- the task part (`task_fragment`): what `flowrun.api.status.StatusBuilder` folded from events;
- the results part (`results_fragment`): return-task results within the one results cap.

`render` joins them into the whole status that `flowrun run` prints. The operator sends the
same parts as JSON merge patches through `flowrun.runs.statuswriter.StatusWriter`: `TaskStatus`
sends only what changed of the task part since the last patch, with explicit nulls for what
disappeared (a merge patch deletes a key only when told so). The parts write `None` for an
absent optional key; `render` drops them (a whole status has no nulls).

Pure: no I/O, no clock (callers pass `now`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowrun.api import conditions
from flowrun.api.status import StatusBuilder, StatusLimits, cap_results, rfc3339, truncate
from flowrun.engine.events import TaskEvent

# The order of a whole status's keys (what `flowrun run` prints).
ORDER = ("phase", "message", "progress", "failed", "startTime", "completionTime", "taskCounts",
         "tasks", "tasksOmitted", "statusConfigMap", "results", "resultsOmitted", "cluster",
         "conditions", "observedGeneration")  # fmt: skip
TASK_KEYS = ("progress", "failed", "taskCounts", "tasks", "tasksOmitted")
RUN_MESSAGE_CHARS = 1000  # a run's message, its conditions' and its Events' (task messages: less)


def run_message(text: str, redact: Callable[[str], str] | None = None) -> str:
    """A run's message as status and Events carry it: secret values masked, then bounded
    (masking first: a cut could leave a secret's prefix that no longer matches)."""
    if redact is not None:
        text = redact(text)
    return truncate(text, RUN_MESSAGE_CHARS) or ""


def phase_fragment(
    phase: str,
    *,
    now: float,
    reason: str | None = None,
    message: str | None = None,
    generation: int | None = None,
    start_time: float | None = None,
    completion_time: float | None = None,
    previous_conditions: Sequence[Mapping[str, Any]] | None = None,
    redact: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The part of status that says where the run is: phase, message, times, conditions.

    >>> f = phase_fragment("Running", now=0.0, reason="Running", message="", generation=1)
    >>> [c["type"] for c in f["conditions"] if c["status"] == "True"]
    ['Reconciling']
    """
    text = None if message is None else run_message(message, redact)
    return {
        "phase": phase,
        "message": text,
        "startTime": None if start_time is None else rfc3339(start_time),
        "completionTime": None if completion_time is None else rfc3339(completion_time),
        "conditions": conditions.for_phase(
            phase,
            now=rfc3339(now),
            generation=generation,
            reason=reason,
            message=text,
            previous=previous_conditions,
        ),
        "observedGeneration": generation,
    }


def task_fragment(builder: StatusBuilder, *, lean: bool = False) -> dict[str, Any]:
    """The task part: progress, failures, counts and the tasks within the size budget (`lean`:
    a big run's FlowRun's, whose whole task map is in its companion: `task_map`)."""
    tasks, omitted = builder.tasks(lean=lean)
    return {
        "progress": builder.progress(),
        "failed": builder.failed,
        "taskCounts": builder.task_counts(),
        "tasks": tasks,
        "tasksOmitted": omitted or None,
    }


def task_map(builder: StatusBuilder) -> dict[str, Any]:
    """The whole bounded task map (`tasks`, `tasksOmitted`), as a big run's companion holds it."""
    tasks, omitted = builder.tasks()
    return {"tasks": tasks, "tasksOmitted": omitted}


def results_fragment(
    results: Mapping[str, Any],
    omitted: Sequence[str] = (),
    limits: StatusLimits | None = None,
) -> dict[str, Any]:
    """`results` and `resultsOmitted` within the one results cap; empty when there are none."""
    kept, left_out = cap_results(results, limits)
    names = [*omitted, *left_out]
    if not kept and not names:
        return {}
    return {"results": kept or None, "resultsOmitted": names or None}


def render(
    builder: StatusBuilder | None,
    *,
    phase: str,
    now: float,
    message: str | None = None,
    reason: str | None = None,
    generation: int | None = None,
    start_time: float | None = None,
    completion_time: float | None = None,
    results: Mapping[str, Any] | None = None,
    results_omitted: Sequence[str] = (),
    cluster: Mapping[str, str] | None = None,
    previous_conditions: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole `status` object (camelCase, no nulls), ready for the status subresource.

    Without a builder, a run stopped before its tasks were planned: no task part (as the
    operator writes it for a FlowRun created with `cancel: true`)."""
    limits = builder.limits if builder is not None else None
    parts: dict[str, Any] = {
        **phase_fragment(
            phase,
            now=now,
            reason=reason,
            message=message,
            generation=generation,
            start_time=start_time,
            completion_time=completion_time,
            previous_conditions=previous_conditions,
            redact=builder.redact if builder is not None else None,
        ),
        **(task_fragment(builder) if builder is not None else {}),
        **results_fragment(results or {}, results_omitted, limits),
        "cluster": dict(cluster) if cluster else None,
    }
    return {key: parts[key] for key in ORDER if parts.get(key) is not None}


def merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `old` into `new`.

    >>> merge_diff({"a": 1, "b": {"x": 1, "y": 2}}, {"b": {"x": 1, "y": 3}, "c": 4})
    {'a': None, 'b': {'y': 3}, 'c': 4}
    """
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_diff(before, value)
            if nested:
                patch[key] = nested
        elif key not in old or before != value:
            patch[key] = value
    return patch


class TaskStatus:
    """Folds TaskEvents; `fragment()` is the task part that changed since the last call."""

    def __init__(
        self,
        task_names: list[str],
        *,
        redact: Callable[[str], str],
        sent: Mapping[str, Any] | None = None,
        known: Mapping[str, Mapping[str, Any]] | None = None,
        lean: Callable[[], bool] = lambda: False,
    ) -> None:
        self.builder = StatusBuilder(task_names, redact=redact)
        # What the object's status holds already (after a restart: the last operator's view),
        # taken over by the builder so resumed tasks keep their entries and count as done;
        # `known`: those tasks with the companion's (a big run's FlowRun lists only some).
        sent = sent or {}
        self._sent: dict[str, Any] = {k: sent[k] for k in TASK_KEYS if k in sent}
        self.builder.restore(known if known is not None else sent.get("tasks") or {})
        # Asked at every fragment: a big run whose companion was given up goes back to full.
        self._lean = lean

    def apply(self, event: TaskEvent) -> None:
        self.builder.apply(event)

    def fragment(self) -> dict[str, Any]:
        fragment = task_fragment(self.builder, lean=self._lean())
        current = {k: v for k, v in fragment.items() if v is not None}
        patch = merge_diff(self._sent, current)
        self._sent = current
        return patch

    def task_map(self) -> dict[str, Any]:
        return task_map(self.builder)
