"""The FlowRun resource as pydantic models: the single source of its shape.

`crds/flowrun.yaml` is generated from these models (`flowrun.api.crd`), the controller and
`flowrun run` parse manifests with them, and `flowrun.api.status` renders status in their shape.
Field names are snake_case in Python and camelCase on the wire (`by_alias=True`). Descriptions
become `kubectl explain flowrun.spec...` text. Checks the API server can do (enums, minimums,
required fields, exactly one of ref/tasks) are declared here and land in the CRD; checks it
cannot do (unknown task names, undeclared parameters) live in `flowrun.api.validation`.

Free-form JSON values (task args/kwargs, parameter values, results) are typed `JSON` and become
`x-kubernetes-preserve-unknown-fields` in the CRD.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flowrun.api.base import JSON, Model, Quantity, TaskName, Timestamp
from flowrun.api.base import keyed as _keyed
from flowrun.api.dask_spec import (
    Adapt,
    ClusterKind,
    DaskSpec,
    EnvVar,
    ResourceRequirements,
)
from flowrun.api.status_schema import (
    ClusterStatus,
    Condition,
    ConditionStatus,
    FailedChild,
    FlowRunStatus,
    Phase,
    TaskStatus,
)
from flowrun.engine import graph_model

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "JSON",
    "KIND",
    "Adapt",
    "CacheValidator",
    "ClusterKind",
    "ClusterStatus",
    "Condition",
    "ConditionStatus",
    "DaskSpec",
    "EnvVar",
    "Executor",
    "ExecutorType",
    "FailedChild",
    "Flow",
    "FlowParameter",
    "FlowRun",
    "FlowRunSpec",
    "FlowRunStatus",
    "GivenState",
    "InlineTask",
    "Model",
    "ObjectMeta",
    "ParameterFrom",
    "Phase",
    "Quantity",
    "ResourceRequirements",
    "RunnerSpec",
    "SecretKeySelector",
    "TaskName",
    "TaskStateInput",
    "TaskStatus",
    "TemplateRef",
    "Timestamp",
    "Trigger",
]

API_GROUP = "flowrun.dev"
API_VERSION = "v1alpha1"
KIND = "FlowRun"

FN_PATTERN = graph_model.FN_REGEX  # `package.module:function`, as the engine parses it
MAX_TASKS = 10_000
# Kubernetes object names (Secrets): anything else could change the path of the request.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"^{_LABEL}(\.{_LABEL})*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"


def _set(description: str) -> Any:
    """A list of unique names (a `set` list in Kubernetes terms)."""
    return Field(
        None,
        description=description,
        max_length=MAX_TASKS,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


def _object_name(description: str) -> Any:
    """The name of a Kubernetes object in the FlowRun's namespace (a DNS-1123 subdomain)."""
    return Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN, description=description)


class Trigger(StrEnum):
    all_successful = "all_successful"
    all_failed = "all_failed"
    any_successful = "any_successful"
    any_failed = "any_failed"
    all_finished = "all_finished"
    always_run = "always_run"
    manual_only = "manual_only"
    not_all_skipped = "not_all_skipped"


class CacheValidator(StrEnum):
    never_use = "never_use"
    duration_only = "duration_only"
    all_inputs = "all_inputs"
    all_parameters = "all_parameters"
    partial_inputs_only = "partial_inputs_only"
    partial_parameters_only = "partial_parameters_only"


class FlowParameter(Model):
    """A parameter an inline flow declares."""

    name: str = Field(min_length=1, description="Parameter name, as used in `{parameter: NAME}`.")
    required: bool | None = Field(
        None,
        description="The run fails unless `spec.parameters` sets it "
        "(default: true when no `default` is given, as in Prefect).",
    )
    default: JSON = Field(
        None,
        description="Value used when `spec.parameters` does not set it. Client-side `kubectl "
        "apply` drops a `default: null` (server-side apply and `kubectl create` keep it): "
        "write `required: false` for an optional parameter without a value.",
    )

    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return "default" not in self.model_fields_set


class InlineTask(Model):
    """One task of an inline flow, in the engine's flow-graph format."""

    name: TaskName = Field(description="Unique task name (also its slug and its key in status).")
    fn: str = Field(
        pattern=FN_PATTERN,
        description='The callable, "package.module:function", imported where the task runs.',
    )
    args: list[JSON] | None = Field(
        None,
        description="Positional arguments: literals, or references {task: NAME} / "
        "{parameter: NAME} (with map: true or flatten: true); {value: X} escapes a literal.",
    )
    kwargs: dict[str, JSON] | None = Field(
        None, description="Keyword arguments, with the same reference syntax as `args`."
    )
    upstream: list[TaskName] | None = _set("Tasks that must finish first (ordering-only edges).")
    max_retries: int | None = Field(None, ge=0, description="Retries after a failed run.")
    retry_delay_seconds: float | None = Field(None, ge=0, description="Delay between retries.")
    timeout_seconds: float | None = Field(None, gt=0, description="A run taking longer fails.")
    trigger: Trigger | None = Field(
        None, description="When the task runs, given its upstream states (all_successful)."
    )
    skip_on_upstream_skip: bool | None = Field(
        None, description="Skip when an upstream task was skipped (true)."
    )
    cache_for_seconds: float | None = Field(None, gt=0, description="Reuse a result this long.")
    cache_validator: CacheValidator | None = Field(
        None, description="When a cached result is still valid (duration_only)."
    )
    tags: list[str] | None = Field(None, description="Free-form labels.")
    map_batch_size: int | None = Field(
        None,
        ge=1,
        description="A mapped task's children run this many per Dask task (executor Dask); "
        "left out, the size adapts to the map's length and the cluster's threads.",
    )


ONE_SOURCE = "exactly one of flow.ref, flow.tasks and flow.templateRef must be set"


class TemplateRef(Model):
    """A FlowTemplate in the FlowRun's namespace, whose flow the run copies when it starts."""

    name: str = _object_name(
        "The FlowTemplate's name, in the FlowRun's namespace. The run copies its "
        "flow when it starts: a later edit or deletion of the template does not change it."
    )


class Flow(Model):
    """The flow to run: a Flow object by reference, an inline list of tasks, or a FlowTemplate."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.ref) ? 1 : 0) + (has(self.tasks) ? 1 : 0) + "
                    "(has(self.templateRef) ? 1 : 0) == 1",
                    "message": ONE_SOURCE,
                },
                {
                    "rule": "!has(self.parameters) || has(self.tasks)",
                    "message": "flow.parameters is only for inline flows (flow.tasks); "
                    "a flow.ref or a flow.templateRef declares its own parameters",
                },
                {
                    "rule": "!has(self.templateRef) || !has(self.referenceTasks)",
                    "message": "flow.referenceTasks cannot be given with flow.templateRef: "
                    "the FlowTemplate's flow declares its own",
                },
                {
                    # At creation only (the flow is immutable after): `oldSelf` is then absent.
                    # A duplicate name stops the map's construction, which names the name.
                    "rule": "oldSelf.hasValue() || !has(self.tasks) || "
                    "size(self.tasks.transformMapEntry(i, t, {t.name: i})) == size(self.tasks)",
                    "optionalOldSelf": True,
                    "message": "flow.tasks: task names must be unique",
                },
            ]
        }
    )

    ref: str | None = Field(
        None,
        pattern=FN_PATTERN,
        description='A Flow object, "package.module:attribute", imported where the tasks run '
        "(the worker image), never in the operator.",
    )
    name: str | None = Field(None, max_length=253, description="Inline flow name ('flow').")
    # Atomic, not a list keyed by name: on every status write the API server re-processes a
    # keyed list item by item (3-4x the cost at 10,000 tasks; benchmarks/status_writes.py).
    # Unique names are a CEL rule above, checked at creation.
    tasks: list[InlineTask] | None = Field(
        None,
        description="An inline flow's tasks (unique names).",
        max_length=MAX_TASKS,
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    parameters: list[FlowParameter] | None = _keyed(
        "Parameters the inline flow declares.", max_items=1000
    )
    reference_tasks: list[TaskName] | None = _set(
        "Tasks whose states decide the flow's state (default: the terminal tasks)."
    )
    template_ref: TemplateRef | None = Field(
        None,
        description="A FlowTemplate holding the flow (FlowRun only): the run copies it when it "
        "starts, and stays Pending while the template does not exist.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Flow:
        given = [self.ref, self.tasks, self.template_ref]
        if sum(1 for source in given if source is not None) != 1:
            raise ValueError(ONE_SOURCE)
        if self.parameters is not None and self.tasks is None:
            raise ValueError("flow.parameters is only for inline flows (flow.tasks)")
        if self.template_ref is not None and self.reference_tasks is not None:
            raise ValueError("flow.referenceTasks cannot be given with flow.templateRef")
        repeated = sorted(n for n, k in Counter(t.name for t in self.tasks or []).items() if k > 1)
        if repeated:
            raise ValueError(f"flow.tasks: task names must be unique; repeated: {repeated}")
        return self


class SecretKeySelector(Model):
    name: str = _object_name(
        "Secret name, in the FlowRun's namespace (a DNS-1123 subdomain: lower-case "
        "letters, digits, '-' and '.')."
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY,
        description="Key within the Secret (letters, digits, '-', '_' and '.').",
    )


class ParameterFrom(Model):
    """A parameter whose value comes from a Secret; it never appears in status or events."""

    name: str = Field(min_length=1, description="Parameter name.")
    secret_key_ref: SecretKeySelector = Field(description="Where the value is read at run time.")


class GivenState(StrEnum):
    Success = "Success"
    Cached = "Cached"
    Skipped = "Skipped"
    Failed = "Failed"
    TriggerFailed = "TriggerFailed"
    TimedOut = "TimedOut"
    Cancelled = "Cancelled"


class TaskStateInput(Model):
    """A finished state given to a task, e.g. the upstream input of a start task."""

    state: GivenState = Field(GivenState.Success, description="The state's kind.")
    result: JSON = Field(None, description="The task's result (JSON).")
    message: str | None = Field(None, max_length=4096, description="The state's message.")


class ExecutorType(StrEnum):
    Local = "Local"
    Synchronous = "Synchronous"
    Dask = "Dask"


class Executor(Model):
    type: ExecutorType = Field(
        ExecutorType.Dask,
        description="Dask (a Dask cluster, see `dask`); Local and Synchronous run in-process "
        "(refused by the operator unless it allows in-process execution).",
    )
    dask: DaskSpec | None = Field(None, description="The Dask cluster (type Dask).")


class RunnerSpec(Model):
    """The runner Pod of this run: where its FlowRunner runs (the Dask client of the run's
    cluster, or the whole flow with the Local executors)."""

    resources: ResourceRequirements | None = Field(
        None,
        description="The runner container's requests and limits. Each quantity given here "
        "(e.g. limits.memory) replaces the operator's default for that key (Helm value "
        "runner.resources, flag --runner-resources); the other keys keep the default. A "
        "default request above a limit given here is lowered to that limit, a default limit "
        "below a request given here is raised to that request.",
    )


class FlowRunSpec(Model):
    """What to run, with which inputs, where. Immutable once created, except `cancel`."""

    flow: Flow = Field(description="The flow: `ref`, inline `tasks` or `templateRef`.")
    parameters: dict[str, JSON] | None = Field(None, description="Parameter values by name.")
    parameters_from: list[ParameterFrom] | None = _keyed(
        "Parameter values read from Secrets at run time.", max_items=256
    )
    start_tasks: list[TaskName] | None = _set(
        "Run only these tasks and what is downstream of them; inputs from `taskStates`."
    )
    task_states: dict[str, TaskStateInput] | None = Field(
        None, description="Given states by task name; tasks given a finished state do not run."
    )
    return_tasks: list[TaskName] | None = _set(
        "Tasks whose JSON results are written to status.results (size-capped)."
    )
    executor: Executor | None = Field(None, description="How tasks run (Dask on Kubernetes).")
    active_deadline_seconds: int | None = Field(
        None, ge=1, description="The run is stopped and Failed after this long."
    )
    ttl_seconds_after_finished: int | None = Field(
        None,
        ge=0,
        description="Dask resources are gone this long after the end; the FlowRun is kept.",
    )
    runner: RunnerSpec | None = Field(
        None,
        description="The runner Pod (e.g. more memory for the client side of a huge map). "
        "Not used when the flow runs in the operator (--allow-in-process) or in flowrun run.",
    )
    cancel: bool = Field(False, description="true: stop gracefully; running tasks end Cancelled.")


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    namespace: str | None = None
    generation: int | None = None


class FlowRun(Model):
    """A whole manifest, as `kubectl apply` would send it."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["flowrun.dev/v1alpha1"]
    kind: Literal["FlowRun"]
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: FlowRunSpec
    status: FlowRunStatus | None = None
