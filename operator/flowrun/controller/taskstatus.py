"""Folds TaskEvents into status fragments for the writer.

Adapter over `flowrun.api.status` (the shared, bounded status builder that `flowrun run` uses
too). Until that lands this holds a minimal fold with the same shape; the daemon only sees
`TaskFold.apply(event) -> fragment`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from flowrun.engine.events import TaskEvent

MAX_MESSAGE = 512
MAX_FAILED_CHILDREN = 5
FAILED = frozenset({"Failed", "TimedOut", "TriggerFailed"})


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_MESSAGE:
        return text
    return text[: MAX_MESSAGE - 1] + "…"


class TaskFold:
    """Keeps per-task status entries; `apply` returns what changed as a status fragment."""

    def __init__(
        self,
        task_names: list[str],
        *,
        redact: Callable[[str | None], str | None],
        known: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._names = list(task_names)
        self._redact = redact
        self._tasks: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (known or {}).items()}
        self._children: dict[str, dict[int, str]] = {}

    def apply(self, event: TaskEvent) -> dict[str, Any]:
        entry = self._tasks.setdefault(event.task, {})
        if event.map_index is not None:
            self._child(entry, event)
        else:
            entry["state"] = event.state
            message = _short(self._redact(event.message))
            if message:
                entry["message"] = message
            else:
                entry.pop("message", None)
            entry["runCount"] = max(event.run_count, entry.get("runCount", 0))
            if event.state == "Running" and "startTime" not in entry:
                entry["startTime"] = _stamp(event.timestamp)
            if event.is_finished:
                entry["endTime"] = _stamp(event.timestamp)
            else:
                entry.pop("endTime", None)
        # A merge patch removes a key only when told so with null.
        sent: dict[str, Any] = {"message": None, "endTime": None, **entry}
        return {"tasks": {event.task: sent}, **self.summary()}

    def _child(self, entry: dict[str, Any], event: TaskEvent) -> None:
        children = self._children.setdefault(event.task, {})
        children[event.map_index or 0] = event.state
        counts: dict[str, int] = {"total": len(children)}
        for st in children.values():
            counts[st] = counts.get(st, 0) + 1
        entry["children"] = counts
        if event.state in FAILED:
            failed = list(entry.get("failedChildren", []))
            if len(failed) < MAX_FAILED_CHILDREN:
                failed.append(
                    {
                        "index": event.map_index,
                        "state": event.state,
                        "message": _short(self._redact(event.message)),
                    }
                )
                entry["failedChildren"] = failed

    def summary(self) -> dict[str, Any]:
        finished = 0
        failed = 0
        for name in self._names:
            entry = self._tasks.get(name, {})
            if entry.get("endTime"):
                finished += 1
            if entry.get("state") in FAILED:
                failed += 1
        return {"progress": f"{finished}/{len(self._names)}", "failed": failed}

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self._tasks.items()}
