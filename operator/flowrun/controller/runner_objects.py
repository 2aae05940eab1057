"""The Kubernetes objects of a FlowRun's runner, as pure manifests (testable without a cluster).

The runner (`flowrun runner` in a Job's Pod, from the run's image) is where the FlowRunner runs:
it is the Dask client of the run's scheduler and writes the run's status itself, so the operator
never unpickles a byte from a scheduler the FlowRun's author controls (docs/install.md, security
model). Each runner gets its own identity, owned by the FlowRun (cascading deletion):

- a ServiceAccount, and a Role + RoleBinding that allow exactly: get/watch of its own FlowRun
  (`resourceNames`), patch of its own `flowruns/status`, patch of its run's live-status ConfigMap
  (`resourceNames`; created by the operator for big inline flows, `flowrun.runs.companion`),
  get of its run's FlowTemplate copy (`resourceNames`; `flowrun.controller.snapshot`), create
  of Events. Nothing else.
- `parametersFrom` Secrets reach the runner as `env[].valueFrom.secretKeyRef`: the kubelet reads
  them, in the FlowRun's namespace; the operator never reads Secret data.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flowrun.api import models
from flowrun.cluster import base
from flowrun.cluster.kubernetes import CONTAINER_SECURITY_CONTEXT
from flowrun.cluster.labels import (
    LABEL_FLOWRUN,
    LABEL_FLOWRUN_UID,
    build_owner_reference,
    label_value,
)
from flowrun.controller import runner_cli
from flowrun.runs import companion
from flowrun.runs.outcome import FlowRunError

LABEL_RUNNER = "flowrun.dev/runner"
RBAC = "rbac.authorization.k8s.io"
BACKOFF_LIMIT = 2  # lost twice more (node gone, a crash) ends the run; OOMKilled ends it at once
SECRET_ENV = runner_cli.SECRET_ENV  # the value of spec.parametersFrom[index]

# What the runner reads from its environment (set by the operator in the Job's Pod template).
ENV_NAMESPACE = "FLOWRUN_RUN_NAMESPACE"
ENV_NAME = "FLOWRUN_RUN_NAME"
ENV_UID = "FLOWRUN_RUN_UID"
ENV_SCHEDULER = "FLOWRUN_SCHEDULER"
ENV_DEADLINE_AT = "FLOWRUN_DEADLINE_AT"
ENV_STATUS_INTERVAL = "FLOWRUN_STATUS_INTERVAL"
# `_env` also passes the operator's live-status policy, under the operator's own variables
# (`companion.ENV_TASKS`, `companion.ENV_REFRESH`, from `LivePolicy.env`): the runner reads them
# with `LivePolicy.from_env`, so both sides decide alike.

NO_IMAGE = (
    "spec.executor.dask.image is not set and the operator has no default image: the run's "
    "runner (and its Dask cluster) need one. Set spec.executor.dask.image to a tagged image that "
    "contains flowrun and the flow's code, or start the operator with --default-image "
    "(Helm: operator.defaultImage)."
)


@dataclass(frozen=True)
class RunnerConfig:
    """What the operator decides about one runner."""

    image: str
    scheduler: str | None = None  # the Dask scheduler the runner connects to (Kubernetes)
    deadline_at: float | None = None  # epoch seconds (spec.activeDeadlineSeconds)
    status_interval: float = 1.0
    grace_seconds: int = 30  # SIGTERM to SIGKILL: the runner winds down its run
    # The container's requests/limits (`resources(...)`: the operator's --runner-resources and
    # the FlowRun's spec.runner.resources); empty: none.
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    live_status: companion.LivePolicy = field(default_factory=companion.LivePolicy)


def runner_name(owner: base.Owner) -> str:
    """The deterministic name of every runner object of a FlowRun (at most 60 characters).

    >>> runner_name(base.Owner("flowrun.dev/v1alpha1", "FlowRun", "etl", "ns", "0a1b2c3d-9"))
    'fr-etl-0a1b2c3d-runner'
    """
    return f"{base.cluster_name(owner)}-runner"


def status_name(owner: base.Owner) -> str:
    """The live-status ConfigMap of a big inline flow (`flowrun.runs.companion`).

    >>> status_name(base.Owner("flowrun.dev/v1alpha1", "FlowRun", "etl", "ns", "0a1b2c3d-9"))
    'fr-etl-0a1b2c3d-status'
    """
    return f"{base.cluster_name(owner)}-status"


def snapshot_name(owner: base.Owner) -> str:
    """The ConfigMap holding the run's copy of its FlowTemplate (`controller.snapshot`).

    >>> snapshot_name(base.Owner("flowrun.dev/v1alpha1", "FlowRun", "etl", "ns", "0a1b2c3d-9"))
    'fr-etl-0a1b2c3d-flow'
    """
    return f"{base.cluster_name(owner)}-flow"


def live_status(owner: base.Owner, data: dict[str, str] | None = None) -> dict[str, Any]:
    """The companion ConfigMap, owned by the FlowRun (deleted with it; kept after the run)."""
    metadata = {**_metadata(owner), "name": status_name(owner)}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data or {}}


def runner_image(spec: models.FlowRunSpec, default_image: str | None) -> str | None:
    """The run's image: its Dask image (which has the flow's code), else the operator's default."""
    dask = (spec.executor.dask if spec.executor else None) or None
    return (dask.image if dask else None) or default_image


def above_limits(requests: Mapping[str, str], limits: Mapping[str, str]) -> list[str]:
    """The resources whose request is above their limit (a Pod the API server refuses).

    >>> above_limits({"cpu": "2", "memory": "1Gi"}, {"cpu": "1500m", "memory": "1024Mi"})
    ['cpu']
    """
    return sorted(
        name
        for name in requests.keys() & limits.keys()
        if _amount(requests[name]) > _amount(limits[name])
    )


def _amount(quantity: str) -> Decimal:
    # Imported here: the runner imports this module (through settings) but compares nothing,
    # and keeps the kubernetes client out of its start-up (runner_cli.KOPF_OPTIONAL).
    from kubernetes.utils.quantity import parse_quantity  # noqa: PLC0415 - see above

    amount: Decimal = parse_quantity(quantity)  # type: ignore[no-untyped-call]
    return amount


def resources(
    default: Mapping[str, Mapping[str, str]], spec: models.FlowRunSpec
) -> dict[str, dict[str, str]]:
    """The runner container's resources: the operator's default with each quantity the FlowRun
    gives (`spec.runner.resources`) in its place. The FlowRun's value wins over a default that
    contradicts it: a default request above a limit it gives is lowered to that limit, a
    default limit below a request it gives is raised to that request.

    >>> spec = models.FlowRunSpec.model_validate(
    ...     {"flow": {"ref": "a.b:c"}, "runner": {"resources": {"limits": {"memory": "128Mi"}}}}
    ... )
    >>> resources({"requests": {"cpu": "50m", "memory": "256Mi"}}, spec)
    {'requests': {'cpu': '50m', 'memory': '128Mi'}, 'limits': {'memory': '128Mi'}}
    """
    given = spec.runner.resources if spec.runner else None
    own = {
        kind: {name: str(q) for name, q in (getattr(given, kind, None) or {}).items()}
        for kind in ("requests", "limits")
    }
    if wrong := above_limits(own["requests"], own["limits"]):
        raise FlowRunError(
            "InvalidSpec",
            "; ".join(
                f"spec.runner.resources.requests.{name} ({own['requests'][name]}) is above "
                f"spec.runner.resources.limits.{name} ({own['limits'][name]})"
                for name in wrong
            )
            + ": a request must be at most its limit.",
        )
    requests = {**(default.get("requests") or {}), **own["requests"]}
    limits = {**(default.get("limits") or {}), **own["limits"]}
    for name in above_limits(requests, limits):
        if name in own["limits"]:
            requests[name] = limits[name]
        elif name in own["requests"]:
            limits[name] = requests[name]
    return {kind: v for kind, v in (("requests", requests), ("limits", limits)) if v}


def labels(owner: base.Owner) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "flowrun-operator",
        "app.kubernetes.io/component": "runner",
        LABEL_FLOWRUN: label_value(owner.name),
        LABEL_FLOWRUN_UID: label_value(owner.uid),
    }


def _metadata(owner: base.Owner) -> dict[str, Any]:
    return {
        "name": runner_name(owner),
        "namespace": owner.namespace,
        "labels": labels(owner),
        "ownerReferences": [build_owner_reference(owner)],
    }


def service_account(owner: base.Owner) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(owner)}


def role(owner: base.Owner) -> dict[str, Any]:
    """Exactly what a runner needs, and only on its own FlowRun."""
    own = [owner.name]
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": _metadata(owner),
        "rules": [
            {
                "apiGroups": [models.API_GROUP],
                "resources": ["flowruns"],
                "resourceNames": own,
                "verbs": ["get", "watch"],
            },
            {
                "apiGroups": [models.API_GROUP],
                "resources": ["flowruns/status"],
                "resourceNames": own,
                "verbs": ["patch"],
            },
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [status_name(owner)],
                "verbs": ["get", "patch"],  # get: a restarted runner reads its task map back
            },
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [snapshot_name(owner)],
                "verbs": ["get"],
            },
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        ],
    }


def role_binding(owner: base.Owner) -> dict[str, Any]:
    name = runner_name(owner)
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(owner),
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
    }


def secret_env(spec: models.FlowRunSpec) -> list[dict[str, Any]]:
    """One variable per `parametersFrom` item, read by the kubelet from the Secret."""
    return [
        {
            "name": SECRET_ENV.format(index=i),
            "valueFrom": {
                "secretKeyRef": {"name": item.secret_key_ref.name, "key": item.secret_key_ref.key}
            },
        }
        for i, item in enumerate(spec.parameters_from or [])
    ]


def _env(owner: base.Owner, spec: models.FlowRunSpec, config: RunnerConfig) -> list[Any]:
    plain = {
        ENV_NAMESPACE: owner.namespace,
        ENV_NAME: owner.name,
        ENV_UID: owner.uid,
        ENV_STATUS_INTERVAL: f"{config.status_interval:g}",
        **config.live_status.env(),
    }
    if config.scheduler:
        plain[ENV_SCHEDULER] = config.scheduler
    if config.deadline_at is not None:
        plain[ENV_DEADLINE_AT] = f"{config.deadline_at:.3f}"
    return [{"name": k, "value": v} for k, v in plain.items()] + secret_env(spec)


def job(owner: base.Owner, spec: models.FlowRunSpec, config: RunnerConfig) -> dict[str, Any]:
    """The runner Job: one Pod at a time; a lost Pod is replaced and resumes the run.

    >>> owner = base.Owner("flowrun.dev/v1alpha1", "FlowRun", "etl", "ns", "uid-1")
    >>> spec = models.FlowRunSpec.model_validate({"flow": {"ref": "a.b:c"}})
    >>> job(owner, spec, RunnerConfig(image="img:1"))["spec"]["template"]["spec"]["containers"][0][
    ...     "command"]
    ['flowrun', 'runner']
    """
    name = runner_name(owner)
    pod_labels = {**labels(owner), LABEL_RUNNER: name}
    container = {
        "name": "runner",
        "image": config.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["flowrun", "runner"],
        "env": _env(owner, spec, config),
        "securityContext": copy.deepcopy(CONTAINER_SECURITY_CONTEXT),
        # A runner that crashes leaves the tail of its log in its Pod's status
        # (`state.terminated.message`, written by the kubelet): the operator copies it into the
        # run's failure message, since the Pod and its log go with the Job at cleanup.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if config.resources:
        container["resources"] = {k: dict(v) for k, v in config.resources.items()}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(owner),
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": True,  # the runner writes its status
                    # Pod Security "restricted": the runner never needs root (the project's
                    # image runs as 10001; an image of flows built on it keeps that user).
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": config.grace_seconds,
                    "containers": [container],
                },
            },
        },
    }
