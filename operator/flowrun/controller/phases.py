"""Status fragments for phase changes: phase, message, times and kstatus conditions.

Pure functions of (phase, reason, message, generation, time), so GitOps tools read the same
answer from `conditions` as people read from `phase`: while running, Reconciling=True; when
Succeeded, Ready=True and Succeeded=True; when Failed or Cancelled, Stalled=True with the reason.
The conditions list is always sent whole (a merge patch replaces lists).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})


def timestamp(when: dt.datetime | None = None) -> str:
    when = when or dt.datetime.now(dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _condition(
    kind: str, status: bool, *, reason: str, message: str, generation: int | None, now: str
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def conditions(
    phase: str, *, reason: str, message: str, generation: int | None, now: str
) -> list[dict[str, Any]]:
    """kstatus conditions for a phase.

    >>> conds = conditions("Running", reason="R", message="", generation=1, now="t")
    >>> [c["type"] for c in conds if c["status"] == "True"]
    ['Reconciling']
    """
    done = phase in TERMINAL
    ok = phase == "Succeeded"
    common: dict[str, Any] = {
        "reason": reason,
        "message": message,
        "generation": generation,
        "now": now,
    }
    return [
        _condition("Ready", ok, **common),
        _condition("Succeeded", ok, **common),
        _condition("Reconciling", not done, **common),
        _condition("Stalled", done and not ok, **common),
    ]


def phase_status(
    phase: str,
    *,
    reason: str,
    message: str,
    generation: int | None,
    now: dt.datetime | None = None,
    start_time: str | None = None,
) -> dict[str, Any]:
    """The status fragment that moves a FlowRun to `phase`."""
    stamp = timestamp(now)
    fragment: dict[str, Any] = {
        "phase": phase,
        "message": message,
        "conditions": conditions(
            phase, reason=reason, message=message, generation=generation, now=stamp
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
