"""Status fragments for phase changes: phase, message, times and kstatus conditions.

Pure functions of (phase, reason, message, generation, time); the conditions themselves come
from `flowrun.api.conditions` (kstatus), so `flowrun run` and the operator agree. The conditions
list is always sent whole (a merge patch replaces lists).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from flowrun.api import conditions

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})


def timestamp(when: dt.datetime | None = None) -> str:
    when = when or dt.datetime.now(dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def phase_status(
    phase: str,
    *,
    reason: str,
    message: str,
    generation: int | None,
    now: dt.datetime | None = None,
    start_time: str | None = None,
    previous: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The status fragment that moves a FlowRun to `phase`.

    >>> f = phase_status("Running", reason="Running", message="", generation=1)
    >>> [c["type"] for c in f["conditions"] if c["status"] == "True"]
    ['Reconciling']
    """
    stamp = timestamp(now)
    fragment: dict[str, Any] = {
        "phase": phase,
        "message": message,
        "conditions": conditions.for_phase(
            phase,
            now=stamp,
            generation=generation,
            reason=reason,
            message=message,
            previous=previous,
        ),
    }
    if generation is not None:
        fragment["observedGeneration"] = generation
    if phase == "Running":
        fragment["startTime"] = start_time or stamp
    if phase in TERMINAL:
        fragment["completionTime"] = stamp
    return fragment


def final_phase(flow_state: str) -> str:
    """The FlowRun phase for the flow's final engine state (by class name)."""
    if flow_state in {"Success", "Cached", "Mapped", "Skipped"}:
        return "Succeeded"
    if flow_state in {"Cancelled", "Cancelling"}:
        return "Cancelled"
    return "Failed"
