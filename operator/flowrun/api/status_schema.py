"""The shape of `FlowRun.status`: what the status builder renders and the CRD declares.

`flowrun.api.status` produces plain dicts in exactly this shape (tests validate them against
these models, and the API server stores them unpruned).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from flowrun.api.base import JSON, Model, Timestamp


class Phase(StrEnum):
    Pending = "Pending"
    Running = "Running"
    Succeeded = "Succeeded"
    Failed = "Failed"
    Cancelled = "Cancelled"


class FailedChild(Model):
    index: int = Field(ge=0, description="The child's map index.")
    state: str = Field(description="Failed, TimedOut, TriggerFailed, ...")
    message: str | None = Field(None, description="Truncated.")


class TaskStatus(Model):
    state: str = Field(description="The task's latest state (Running, Success, Mapped, ...).")
    message: str | None = Field(None, description="The state's message (truncated).")
    run_count: int | None = Field(None, ge=0, description="Runs so far (retries add runs).")
    start_time: Timestamp | None = Field(None, description="When it first ran.")
    end_time: Timestamp | None = Field(None, description="When it finished.")
    children: dict[str, int] | None = Field(
        None, description="Mapped tasks: `total` and a count per child state."
    )
    failed_children: list[FailedChild] | None = Field(
        None, description="Mapped tasks: the first failed children, by index."
    )


class ClusterStatus(Model):
    name: str | None = Field(None, description="The Dask cluster's name.")
    scheduler: str | None = Field(None, description="Scheduler address.")
    dashboard: str | None = Field(None, description="Dashboard URL.")
    deleted: bool | None = Field(
        None, description="The operator deleted the cluster when the run ended (nothing is left)."
    )


class TemplateStatus(Model):
    """The FlowTemplate a run copied its flow from (`spec.flow.templateRef`), when it started."""

    name: str = Field(description="The FlowTemplate's name.")
    uid: str | None = Field(None, description="Its metadata.uid when copied.")
    resource_version: str | None = Field(None, description="Its resourceVersion when copied.")
    generation: int | None = Field(None, ge=0, description="Its metadata.generation when copied.")
    config_map: str | None = Field(
        None,
        description="The ConfigMap, owned by the FlowRun, holding the copy every later step of "
        "the run reads (immutable; deleted with the FlowRun).",
    )


class ConditionStatus(StrEnum):
    true = "True"
    false = "False"
    unknown = "Unknown"


class Condition(Model):
    """A kstatus condition (metav1.Condition)."""

    type: str = Field(description="Ready, Succeeded, Reconciling or Stalled.")
    status: ConditionStatus
    reason: str = Field(description="CamelCase reason.")
    message: str = Field("", description="For people.")
    last_transition_time: Timestamp = Field(description="When `status` last changed.")
    observed_generation: int | None = Field(None, ge=0, description="Generation seen.")


class FlowRunStatus(Model):
    """What happened: phase, per-task states (bounded), results, conditions."""

    phase: Phase | None = Field(None, description="Pending, Running, Succeeded, Failed, Cancelled.")
    message: str | None = Field(None, description="Why the run is in this phase.")
    progress: str | None = Field(
        None,
        description='Finished tasks, "done/total". For an inline flow of 1,000 tasks or more, '
        "progress, counts and task states may be up to a minute old while it runs (each write "
        "of the FlowRun costs the API server the whole flow); its live figures are in the "
        "ConfigMap fr-<name>-<uid8>-status.",
    )
    failed: int | None = Field(None, ge=0, description="Tasks and mapped children that failed.")
    start_time: Timestamp | None = None
    completion_time: Timestamp | None = None
    task_counts: dict[str, int] | None = Field(
        None, description="`total` and the number of tasks per state (complete)."
    )
    tasks: dict[str, TaskStatus] | None = Field(
        None,
        description="Per-task state; bounded in size: failures first, then unfinished tasks, "
        "`tasksOmitted` more. For a run with `statusConfigMap`, a smaller part (about 4 KiB): "
        "the whole bounded map is that ConfigMap's key `tasks` (JSON).",
    )
    tasks_omitted: int | None = Field(
        None, ge=0, description="Tasks left out of `tasks` to keep status small."
    )
    status_config_map: str | None = Field(
        None,
        description="A run of 1,000 tasks or more: the ConfigMap, owned by the FlowRun, with its "
        "live progress (keys `phase`, `message`, `progress`, `failed`, `taskCounts`) and its "
        "whole bounded task map (`tasks`, JSON; `tasksOmitted`), written with each write of the "
        "FlowRun. Removed when that ConfigMap cannot be written: `tasks` is then the whole "
        "bounded map again.",
    )
    results: dict[str, JSON] | None = Field(None, description="Results of `spec.returnTasks`.")
    results_omitted: list[str] | None = Field(
        None, description="Return tasks whose result was too large or not JSON."
    )
    cluster: ClusterStatus | None = None
    template: TemplateStatus | None = Field(
        None, description="The FlowTemplate this run's flow was copied from (templateRef)."
    )
    conditions: list[Condition] | None = Field(
        None,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    observed_generation: int | None = Field(None, ge=0, description="metadata.generation seen.")
    operator_restarts: int | None = Field(
        None,
        ge=0,
        description="Times this run was taken over after the process running it (a runner Pod, "
        "or an operator with --allow-in-process) crashed or was killed while it was in flight "
        "(the run ends Failed past the limit).",
    )
    handed_over: bool | None = Field(
        None,
        description="The last process running this run (a runner Pod, or an operator with "
        "--allow-in-process) stopped cleanly and left it to the next one.",
    )
