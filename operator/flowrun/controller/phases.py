"""Status fragments for phase changes: phase, message, times and kstatus conditions.

Pure functions of (phase, reason, message, generation, time); the conditions themselves come
from `flowrun.api.conditions` (kstatus), so `flowrun run` and the operator agree. The conditions
list is always sent whole (a merge patch replaces lists).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from flowrun.api import conditions
from flowrun.api.status import rfc3339
from flowrun.runs.outcome import TERMINAL

__all__ = ["TERMINAL", "phase_status"]


def phase_status(
    phase: str,
    *,
    reason: str,
    message: str,
    generation: int | None,
    now: float | None = None,
    start_time: str | None = None,
    previous: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The status fragment that moves a FlowRun to `phase`.

    >>> f = phase_status("Running", reason="Running", message="", generation=1)
    >>> [c["type"] for c in f["conditions"] if c["status"] == "True"]
    ['Reconciling']
    """
    stamp = rfc3339(time.time() if now is None else now)
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
