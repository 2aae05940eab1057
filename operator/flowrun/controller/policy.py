"""What a run's events and its end mean for the operator: decisions only, no API calls.

The daemon (`daemon.Run`) orchestrates a run — the cluster, the runner thread, the status
writer, kopf's Events — and asks this module what each thing means: which outcome a flow's end
or a stop gives, whether the operator is exiting, which task failures become Events, which
results go into status, and how many runs are in each phase (the phase gauge).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowrun.api import status as status_mod
from flowrun.controller import errors, stopping
from flowrun.controller import metrics as metrics_mod
from flowrun.controller import settings as settings_mod
from flowrun.engine.events import TaskEvent
from flowrun.runs import outcome as outcome_mod
from flowrun.runs.execute import RunResult
from flowrun.runs.outcome import SUCCEEDED, FlowRunError, Outcome, flow_outcome
from flowrun.runs.plan import SecretReader
from flowrun.runs.statuswriter import StatusSink

MAX_TASK_FAILURE_EVENTS = 10
EXITING = frozenset({stopping.OPERATOR_EXITING, "OperatorStopped"})
# Said once, when such a run starts: a field its author set and this mode does not honour.
RUNNER_IGNORED = (
    "spec.runner is not applied: this operator runs the flow in its own process "
    "(--allow-in-process; Helm operator.allowInProcess), so the run has no runner Pod to give "
    "these resources to; it shares the operator's. An operator without --allow-in-process (the "
    "product path, the chart's default) runs each FlowRun in a runner Pod that spec.runner sizes."
)


@dataclass
class Context:
    """What every daemon shares: created once at operator start-up (kopf memo)."""

    settings: settings_mod.OperatorSettings
    api: Any
    metrics: metrics_mod.Metrics
    sink: StatusSink
    secrets: SecretReader
    slots: asyncio.Semaphore
    phases: dict[str, str] = field(default_factory=dict)
    background: set[asyncio.Task[None]] = field(default_factory=set)  # keeps tasks referenced

    def set_phase(self, uid: str, phase: str | None) -> None:
        if phase is None:
            self.phases.pop(uid, None)
        else:
            self.phases[uid] = phase
        for name in metrics_mod.PHASES:
            count = sum(1 for p in self.phases.values() if p == name)
            self.metrics.flowruns.labels(phase=name).set(count)


def stopped_outcome(why: str, deadline_seconds: int | None) -> Outcome:
    """A run stopped from outside: deleted, cancelled, past its deadline, operator exiting."""
    return outcome_mod.stopped_outcome(why, deadline_seconds)


def end_of_flow(
    result: RunResult, *, cancelled: bool, stop_reason: str | None, deadline_seconds: int | None
) -> Outcome:
    """The flow ran to its end; a stop that cut it short names the reason instead."""
    ended = flow_outcome(result.state, result.message)
    if cancelled and ended.phase != SUCCEEDED:
        return stopped_outcome(stop_reason or stopping.CANCEL_REQUESTED, deadline_seconds)
    return Outcome(ended.phase, ended.reason, errors.truncate(ended.message))


OPERATOR_RESTARTS = "OperatorRestarts"
# A clean shutdown leaves this mark; the next operator's takeover is then not a restart.
HANDED_OVER = {"handedOver": True}


def takeover(status: Mapping[str, Any], limit: int) -> tuple[dict[str, Any], FlowRunError | None]:
    """An operator takes over a run already in flight: the status fragment that counts it,
    and the error that ends the run when the operators before this one crashed too often.

    >>> takeover({"operatorRestarts": 2}, 2)[1].reason
    'OperatorRestarts'
    >>> takeover({"operatorRestarts": 2, "handedOver": True}, 2)
    ({'handedOver': None}, None)
    """
    if status.get("handedOver"):
        return {"handedOver": None}, None
    restarts = int(status.get("operatorRestarts") or 0) + 1
    fragment = {"operatorRestarts": restarts, "handedOver": None}
    if restarts <= limit:
        return fragment, None
    return fragment, FlowRunError(
        OPERATOR_RESTARTS,
        f"The operator restarted {restarts} times while this run was in flight (at most "
        f"{limit}, --max-run-restarts): a task of this run may be crashing it (os._exit, a "
        "crash, running out of memory). The run was stopped.",
    )


CLUSTER_DELETED = {"cluster": {"deleted": True}}


def needs_sweep(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """A finished run may have left a DaskCluster behind only if it asked for a Kubernetes
    cluster, got one (status names it) and did not see it deleted: a restart sweeps no other.

    >>> needs_sweep({"executor": {"type": "Local"}}, {"cluster": {"name": "x"}})
    False
    >>> needs_sweep({}, {}), needs_sweep({}, {"cluster": {"name": "fr-a-1"}})
    (False, True)
    """
    executor = spec.get("executor") or {}
    dask = executor.get("dask") or {}
    kubernetes = executor.get("type", "Dask") == "Dask" and dask.get("cluster", "Kubernetes") == (
        "Kubernetes"
    )
    cluster = status.get("cluster") or {}
    return kubernetes and bool(cluster.get("name")) and not cluster.get("deleted")


def is_exiting(outcome: Outcome) -> bool:
    """The operator itself is going away: leave the run for the next one to resume."""
    return outcome.reason in EXITING


class TaskFailureEvents:
    """A Warning Event for the first few failed (unmapped) tasks; status holds the rest."""

    def __init__(self, limit: int = MAX_TASK_FAILURE_EVENTS) -> None:
        self.limit = limit
        self.sent = 0

    def admit(self, event: TaskEvent) -> bool:
        if event.state not in status_mod.FAILED_STATES or event.map_index is not None:
            return False
        if self.sent >= self.limit:
            return False
        self.sent += 1
        return True
