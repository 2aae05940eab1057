"""How a run ends: the one phase policy for the operator and `flowrun run`.

A flow's final engine state becomes a FlowRun phase, a CamelCase reason (for conditions and
Events) and a message, by the engine's state classes: a `Success` (Cached, Mapped, Skipped
too) succeeds, a `Cancelled` (or `Cancelling`) is cancelled, everything else fails. A flow that
stops while `Running` (a task Paused, or waiting for `manual_only`) fails as well: nothing can
resume it later, and a run must never be left without its end.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowrun.engine import state as states

SUCCEEDED, FAILED, CANCELLED = "Succeeded", "Failed", "Cancelled"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})  # FlowRun phases, not engine states


class FlowRunError(Exception):
    """A run cannot go on. `reason` is CamelCase (Event reason, condition reason)."""

    def __init__(self, reason: str, message: str, *, phase: str = FAILED) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.phase = phase


# Why a run stopped before its flow's end (CamelCase: condition and Event reasons).
DELETED = "FlowRunDeleted"
OPERATOR_EXITING = "OperatorExiting"
CANCEL_REQUESTED = "CancelRequested"
DEADLINE_EXCEEDED = "DeadlineExceeded"
INTERRUPTED = "Interrupted"

STOP_MESSAGES = {
    DELETED: "The FlowRun was deleted; its work was cancelled.",
    CANCEL_REQUESTED: "Cancelled on request (spec.cancel: true).",
    DEADLINE_EXCEEDED: "The run exceeded spec.activeDeadlineSeconds ({seconds}s) and was stopped.",
    OPERATOR_EXITING: "The operator stopped; the run resumes when it starts again.",
    INTERRUPTED: "Cancelled from the terminal (Ctrl-C or SIGTERM).",
}


@dataclass(frozen=True)
class Outcome:
    phase: str
    reason: str
    message: str
    retry: bool = False  # a transient operator-side problem: retry later


def final_phase(flow_state: str) -> str:
    """The FlowRun phase for the flow's final engine state (by class name).

    >>> final_phase("Mapped"), final_phase("Cancelling"), final_phase("Running")
    ('Succeeded', 'Cancelled', 'Failed')
    """
    cls = states.BY_NAME.get(flow_state, states.State)
    if issubclass(cls, states.Success):
        return SUCCEEDED
    if issubclass(cls, states.Cancelled | states.Cancelling):
        return CANCELLED
    return FAILED


def stopped_outcome(why: str, deadline_seconds: int | None = None) -> Outcome:
    """A run stopped from outside: deleted, cancelled, past its deadline, interrupted.

    >>> stopped_outcome(DEADLINE_EXCEEDED, 5).message
    'The run exceeded spec.activeDeadlineSeconds (5s) and was stopped.'
    """
    message = STOP_MESSAGES[why].format(seconds=deadline_seconds)
    return Outcome(FAILED if why == DEADLINE_EXCEEDED else CANCELLED, why, message)


def flow_outcome(flow_state: str, message: str | None) -> Outcome:
    """Phase, reason and message for a flow that ran to its end."""
    phase = final_phase(flow_state)
    if phase != FAILED:
        reason = phase
    elif issubclass(states.BY_NAME.get(flow_state, states.State), states.Finished):
        reason = "TasksFailed"
    else:
        reason = "TasksIncomplete"
    return Outcome(phase, reason, message or f"Flow {flow_state}.")
