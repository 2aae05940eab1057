"""The one place where failures of a run become a phase, a reason and a message.

Everything the daemon can meet while running a FlowRun goes through `classify`, so the status,
the Warning Event and the kopf error kind (permanent: do not retry; temporary: retry the daemon)
always agree, and no exception ever escapes to crash the operator or touch another FlowRun.
"""

from __future__ import annotations

import asyncio

from flowrun.api.validation import SpecError
from flowrun.cluster import ClusterStartupError
from flowrun.controller import kube
from flowrun.runs import render
from flowrun.runs.outcome import FlowRunError, Outcome

__all__ = ["MAX_MESSAGE", "FlowRunError", "Outcome", "classify", "truncate"]

MAX_MESSAGE = render.RUN_MESSAGE_CHARS


def truncate(message: str) -> str:
    """A message as long as a condition or Event should hold."""
    return render.run_message(message)


def classify(exc: BaseException) -> Outcome:
    """Map any exception from a run to its outcome. Unknown errors fail the run, loudly.

    >>> classify(FlowRunError("InvalidSpec", "startTasks[0]: unknown task 'x'")).reason
    'InvalidSpec'
    """
    if isinstance(exc, FlowRunError):
        return Outcome(exc.phase, exc.reason, truncate(exc.message))
    if isinstance(exc, SpecError):
        return Outcome("Failed", exc.reason, truncate(str(exc)))
    if isinstance(exc, ClusterStartupError):
        return Outcome("Failed", exc.reason, truncate(exc.message))
    if isinstance(exc, asyncio.CancelledError):
        return Outcome("Cancelled", "OperatorStopped", "The operator stopped the run.")
    if isinstance(exc, ValueError):
        # FlowGraphError and pydantic's ValidationError are ValueErrors that name the path.
        return Outcome("Failed", "InvalidSpec", truncate(str(exc)))
    if kube.is_api_error(exc):
        return Outcome("Failed", "KubernetesAPIError", truncate(str(exc)), retry=True)
    return Outcome("Failed", "InternalError", truncate(f"{type(exc).__name__}: {exc}"))
