"""Task status for the writer: `flowrun.api.status.StatusBuilder`, sent as merge-patch diffs.

The builder (shared with `flowrun run`) renders the bounded task part of status: `tasks`,
`tasksOmitted`, `taskCounts`, `progress`, `failed`. Events are folded as they arrive; the
rendering happens once per status patch (`fragment()`), and only what changed since the last
patch is sent, with explicit nulls for what disappeared (a task pushed out of the size budget,
a state count that dropped to zero): a JSON merge patch deletes a key only when told so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowrun.api import status as status_mod
from flowrun.engine.events import TaskEvent

FAILED = status_mod.FAILED_STATES
TASK_KEYS = ("progress", "failed", "taskCounts", "tasks", "tasksOmitted")


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
    """Folds TaskEvents; `fragment()` is the part of status that changed since the last call."""

    def __init__(
        self,
        task_names: list[str],
        *,
        redact: Callable[[str | None], str | None],
        sent: Mapping[str, Any] | None = None,
    ) -> None:
        def redact_text(text: str) -> str:
            return redact(text) or ""

        self.builder = status_mod.StatusBuilder(task_names, redact=redact_text)
        # What the object's status holds already (after a restart: the last operator's view),
        # taken over by the builder so resumed tasks keep their entries and count as done.
        sent = sent or {}
        self._sent: dict[str, Any] = {k: sent[k] for k in TASK_KEYS if k in sent}
        self.builder.restore(sent.get("tasks") or {})

    def apply(self, event: TaskEvent) -> None:
        self.builder.apply(event)

    def render(self) -> dict[str, Any]:
        tasks, omitted = self.builder.tasks()
        return {
            "progress": self.builder.progress(),
            "failed": self.builder.failed,
            "taskCounts": self.builder.task_counts(),
            "tasks": tasks,
            "tasksOmitted": omitted or None,
        }

    def fragment(self) -> dict[str, Any]:
        current = self.render()
        patch = merge_diff(self._sent, {k: v for k, v in current.items() if v is not None})
        self._sent = {k: v for k, v in current.items() if v is not None}
        return patch
