"""kstatus conditions for a FlowRun phase: Ready, Succeeded, Reconciling, Stalled.

GitOps tools read these, not `phase` (kubernetes-sigs/cli-utils kstatus; Flux health checks):
`Reconciling=True` means in progress, `Stalled=True` means it will not get better without a
change (a failed or cancelled run), `Ready=True` means done and good. Every condition carries
`observedGeneration`, and keeps its `lastTransitionTime` while its status does not change.
Pure: the caller passes `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TYPES = ("Ready", "Succeeded", "Reconciling", "Stalled")
_IN_PROGRESS = {"Pending", "Running"}


def _statuses(phase: str) -> dict[str, str]:
    if phase in _IN_PROGRESS:
        return {"Ready": "False", "Succeeded": "Unknown", "Reconciling": "True", "Stalled": "False"}
    if phase == "Succeeded":
        return {"Ready": "True", "Succeeded": "True", "Reconciling": "False", "Stalled": "False"}
    return {"Ready": "False", "Succeeded": "False", "Reconciling": "False", "Stalled": "True"}


def for_phase(
    phase: str,
    *,
    now: str,
    generation: int | None = None,
    reason: str | None = None,
    message: str | None = None,
    previous: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The four conditions for `phase` (Pending, Running, Succeeded, Failed, Cancelled).

    `reason` (CamelCase, e.g. `DeadlineExceeded`) defaults to the phase; conditions that are
    not the abnormal ones of this phase get the phase as reason.
    """
    before = {c.get("type"): c for c in previous or ()}
    out = []
    for kind, status in _statuses(phase).items():
        why = reason or phase
        old = before.get(kind)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        condition: dict[str, Any] = {
            "type": kind,
            "status": status,
            "reason": why,
            "message": message or "",
            "lastTransitionTime": since or now,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    return out
