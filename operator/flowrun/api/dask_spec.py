"""`spec.executor.dask` of a FlowRun: where the Dask executor runs, and with how many workers.

Part of `flowrun.api.models` (which re-exports every name here), kept apart for its size. The
checks the API server can do are CEL rules here (they land in the CRD); each message names the
field, and the pydantic validators say the same for `flowrun run` and the operator.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from flowrun.api.base import Model, Quantity, keyed

# Local workers are threads inside the operator, sharing its process and cores: beyond this a
# cluster takes minutes to start and its workers starve each other.
MAX_LOCAL_WORKERS = 32
MAX_WORKERS = 1000
TOO_MANY_LOCAL_WORKERS = (
    f"dask.workers is at most {MAX_LOCAL_WORKERS} for dask.cluster Local (threads inside the "
    "operator); use dask.cluster Kubernetes for more workers"
)
TOO_MANY_LOCAL_ADAPT = (
    f"dask.adapt.maximum is at most {MAX_LOCAL_WORKERS} for dask.cluster Local (threads inside "
    "the operator); use dask.cluster Kubernetes for more workers"
)
ADAPT_MIN_MAX = "dask.adapt.maximum must be at least dask.adapt.minimum"
# `workers` is a fixed count, `adapt` a range the autoscaler moves in: both at once would leave
# one of them unheeded, so the API server refuses the pair instead of picking one silently.
WORKERS_AND_ADAPT = (
    "dask.workers and dask.adapt contradict each other: set a fixed dask.workers, or a "
    "dask.adapt range (the cluster starts with max(1, minimum) workers), not both"
)
ADAPT_EXTERNAL = (
    "dask.adapt needs a cluster the run owns (dask.cluster Kubernetes or Local); an External "
    "scheduler's workers are not the run's to scale"
)


# Seconds a run's Dask cluster has to become ready (and reachable) when the spec says nothing.
STARTUP_TIMEOUT_DEFAULT = 300


class ClusterKind(StrEnum):
    Kubernetes = "Kubernetes"
    Local = "Local"
    External = "External"


# A request above its limit makes a Pod the API server refuses, long after the FlowRun was taken.
# At creation only (the spec is immutable after): a status write skips it at `oldSelf`.
_AT_MOST_LIMIT = (
    "oldSelf.hasValue() || !has(self.requests) || !has(self.limits) || "
    "self.limits.all(k, !(k in self.requests) "
    "|| !isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k])) "
    "|| quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)"
)
MAX_RESOURCES = 16  # resource names per map: bounds the rule's cost for the API server


class ResourceRequirements(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": _AT_MOST_LIMIT,
                    "optionalOldSelf": True,
                    "message": "a request must be at most its limit (requests.X <= limits.X)",
                }
            ]
        }
    )

    requests: dict[str, Quantity] | None = Field(
        None, max_length=MAX_RESOURCES, description="e.g. {cpu: '1', memory: 2Gi}"
    )
    limits: dict[str, Quantity] | None = Field(
        None, max_length=MAX_RESOURCES, description="e.g. {memory: 4Gi}"
    )


class EnvVar(Model):
    name: str = Field(min_length=1, description="Variable name.")
    value: str = Field("", description="Variable value.")


class Adapt(Model):
    """Adaptive workers: the cluster grows and shrinks with its queue, within these bounds."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.maximum >= self.minimum", "message": ADAPT_MIN_MAX}
            ]
        }
    )

    minimum: int = Field(
        0,
        ge=0,
        le=MAX_WORKERS,
        description="Fewest workers (0: none while idle; the cluster starts with at least one).",
    )
    maximum: int = Field(ge=1, le=MAX_WORKERS, description="Most workers; at least `minimum`.")

    @model_validator(mode="after")
    def _ordered(self) -> Adapt:
        if self.maximum < self.minimum:
            raise ValueError(f"{ADAPT_MIN_MAX} (minimum {self.minimum}, maximum {self.maximum})")
        return self


class DaskSpec(Model):
    """Where the Dask executor runs."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.cluster != 'External' || has(self.address)",
                    "message": "dask.address is required when dask.cluster is External",
                },
                {
                    "rule": f"self.cluster != 'Local' || !has(self.workers) "
                    f"|| self.workers <= {MAX_LOCAL_WORKERS}",
                    "message": TOO_MANY_LOCAL_WORKERS,
                },
                {
                    "rule": f"self.cluster != 'Local' || !has(self.adapt) "
                    f"|| self.adapt.maximum <= {MAX_LOCAL_WORKERS}",
                    "message": TOO_MANY_LOCAL_ADAPT,
                },
                {"rule": "!has(self.workers) || !has(self.adapt)", "message": WORKERS_AND_ADAPT},
                {
                    "rule": "self.cluster != 'External' || !has(self.adapt)",
                    "message": ADAPT_EXTERNAL,
                },
            ]
        }
    )

    cluster: ClusterKind = Field(
        ClusterKind.Kubernetes,
        description="Kubernetes: an ephemeral cluster owned by the FlowRun (dask-kubernetes); "
        "Local: a LocalCluster inside the operator; External: an existing scheduler at `address`.",
    )
    address: str | None = Field(
        None, min_length=1, description="Scheduler address, e.g. tcp://host:8786 (External only)."
    )
    image: str | None = Field(
        None, description="Scheduler and worker image; must contain flowrun and the flow's code."
    )
    # No default in the schema: the API server would fill it in, and `adapt` could then never
    # be told apart from an explicit `workers`. Absent means 1 (`worker_count`).
    workers: int | None = Field(
        None, ge=1, le=MAX_WORKERS, description="Number of workers (default 1); not with `adapt`."
    )
    adapt: Adapt | None = Field(
        None,
        description="Adaptive workers between `minimum` and `maximum` instead of a fixed "
        "`workers` (Kubernetes: the dask-kubernetes operator's DaskAutoscaler; Local: Dask's "
        "Adaptive).",
    )
    resources: ResourceRequirements | None = Field(None, description="Per-worker resources.")
    env: list[EnvVar] | None = keyed("Environment of scheduler and workers.", max_items=256)
    startup_timeout_seconds: int = Field(
        STARTUP_TIMEOUT_DEFAULT,
        ge=1,
        description="The run fails when the cluster is not ready in time.",
    )
    map_batch_size: int | None = Field(
        None,
        ge=1,
        description="Mapped children per Dask task for every mapped task without its own "
        "`mapBatchSize`; left out, the size adapts to each map and the cluster's threads.",
    )

    @model_validator(mode="after")
    def _address(self) -> DaskSpec:
        if self.cluster is ClusterKind.External and not self.address:
            raise ValueError("dask.address is required when dask.cluster is External")
        if self.workers is not None and self.adapt is not None:
            raise ValueError(WORKERS_AND_ADAPT)
        if self.adapt is not None and self.cluster is ClusterKind.External:
            raise ValueError(ADAPT_EXTERNAL)
        if self.cluster is ClusterKind.Local and self.worker_count() > MAX_LOCAL_WORKERS:
            raise ValueError(TOO_MANY_LOCAL_WORKERS)
        if (
            self.cluster is ClusterKind.Local
            and self.adapt
            and self.adapt.maximum > MAX_LOCAL_WORKERS
        ):
            raise ValueError(TOO_MANY_LOCAL_ADAPT)
        return self

    def worker_count(self) -> int:
        """The workers the cluster starts with: `workers`, else adapt's minimum (at least one,
        so that the first tasks need not wait for the autoscaler), else 1."""
        if self.workers is not None:
            return self.workers
        return max(1, self.adapt.minimum) if self.adapt else 1
