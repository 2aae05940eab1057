"""From a FlowRun spec to a `RunPlan`: everything a run needs, checked before anything starts.

Schema-level problems were refused by the API server already; what is left here are the
semantic ones (unknown task names, missing parameters, unreadable Secrets, in-process execution
the operator does not allow). Each becomes a `FlowRunError` with a reason and a message that
names the field, so the daemon fails the FlowRun instead of crashing.

Secret values live only in `RunPlan.parameters` (handed to the runner) and `RunPlan.masker`
(which masks them in every status patch and Event); they are never logged.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowrun.api import flows, models, templates, validation
from flowrun.runs.outcome import FlowRunError
from flowrun.runs.secrets import Masker

IN_PROCESS_REFUSED = (
    "{what} runs the flow's code inside the operator process; this operator does not allow "
    "in-process execution (start it with --allow-in-process, or use executor Dask with cluster "
    "Kubernetes or External)."
)


class SecretReader(Protocol):
    """None for an absent Secret; PermissionError when the reader may not read it."""

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, str] | None: ...


class TemplateMissing(FlowRunError):
    """The FlowTemplate a FlowRun names does not exist (yet): the run waits, Pending."""

    def __init__(self, name: str, namespace: str) -> None:
        super().__init__(
            "TemplateNotFound",
            f"spec.flow.templateRef.name: FlowTemplate {name!r} not found in namespace "
            f"{namespace!r}; the run starts once it exists (create it, or fix the name in a new "
            "FlowRun).",
            phase="Pending",
        )
        self.name = name


@dataclass(frozen=True)
class TemplateCopy:
    """A FlowRun's copy of its FlowTemplate (identity and `spec.flow`), taken when it started."""

    body: Mapping[str, Any]
    config_map: str | None = None  # where the copy is kept (the operator's snapshot)


class TemplateSource(Protocol):
    """The copy of the FlowTemplate `name` for this run; raises `TemplateMissing` while there is
    neither a copy nor the template."""

    async def template_copy(self, name: str) -> TemplateCopy: ...


async def resolve_template(
    spec: models.FlowRunSpec, source: TemplateSource | None
) -> tuple[models.FlowRunSpec, dict[str, Any] | None]:
    """The spec with a `flow.templateRef` replaced by the template's (copied) flow, checked as
    an inline one, and `status.template`; a spec without one as it is. The one place where a
    template becomes a run's flow: every front end builds its plan through here."""
    ref = spec.flow.template_ref
    if ref is None:
        return spec, None
    if source is None:
        message = f"spec.flow.templateRef.name: FlowTemplate {ref.name!r}: no templates given"
        raise FlowRunError("TemplateNotFound", message)
    copy = await source.template_copy(ref.name)
    flow = templates.template_flow(ref.name, copy.body)
    return templates.with_template(spec, flow), templates.origin(copy.body, copy.config_map)


@dataclass(frozen=True)
class RunPlan:
    spec: models.FlowRunSpec
    flow: dict[str, Any]  # the inline flow dict, or {"ref": ...}
    parameters: dict[str, Any]
    masker: Masker = field(default_factory=Masker)
    executor: str = "Dask"
    cluster_kind: str | None = "Kubernetes"
    template: dict[str, Any] | None = None  # status.template: the FlowTemplate copied

    def redact(self, text: str | None) -> str | None:
        """Mask any secret parameter value in a message (a task may echo its inputs)."""
        return self.masker.optional(text)


async def resolve_secrets(
    spec: models.FlowRunSpec, namespace: str, reader: SecretReader
) -> dict[str, str]:
    values: dict[str, str] = {}
    for i, item in enumerate(spec.parameters_from or []):
        ref = item.secret_key_ref
        where = f"spec.parametersFrom[{i}] ({item.name})"
        try:
            data = await reader.read_secret(namespace, ref.name)
        except ValueError as exc:  # a name no Secret can have: never sent to the server
            raise FlowRunError("InvalidSpec", f"{where}: {exc}") from exc
        except PermissionError as exc:
            raise FlowRunError(
                "SecretForbidden",
                f"{where}: Secret {ref.name!r} in namespace {namespace!r}: {exc} (grant the "
                "operator `get` on Secrets there, e.g. the chart's rbac.secretNamespaces)",
            ) from exc
        if data is None:
            raise FlowRunError("SecretNotFound", f"{where}: Secret {ref.name!r} not found")
        if ref.key not in data:
            raise FlowRunError(
                "SecretKeyNotFound", f"{where}: Secret {ref.name!r} has no key {ref.key!r}"
            )
        try:
            values[item.name] = base64.b64decode(data[ref.key]).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise FlowRunError(
                "SecretNotText", f"{where}: key {ref.key!r} is not UTF-8 text"
            ) from exc
    return values


@dataclass(frozen=True)
class Policy:
    """What the front end allows: the operator's flags, or everything for `flowrun run`."""

    allow_in_process: bool = False


def executor_of(spec: models.FlowRunSpec) -> tuple[str, str | None]:
    """The executor kind and, for Dask, the kind of cluster the spec asks for."""
    executor = spec.executor or models.Executor.model_validate({})
    if executor.type.value != "Dask":
        return executor.type.value, None
    dask = executor.dask or models.DaskSpec.model_validate({})
    return "Dask", dask.cluster.value


def make_plan(
    spec: models.FlowRunSpec,
    *,
    secret_values: Mapping[str, str],
    executor: str | None = None,
) -> RunPlan:
    """The plan for a checked spec whose Secrets are read (`executor` overrides the spec's)."""
    kind, cluster_kind = executor_of(spec)
    return RunPlan(
        spec=spec,
        flow=flows.flow_dict(spec),  # keeps an explicit `default: null` (a plain dump loses it)
        parameters={**(spec.parameters or {}), **secret_values},
        masker=Masker(secret_values.values()),
        executor=executor or kind,
        cluster_kind=cluster_kind if (executor or kind) == "Dask" else None,
    )


async def build_plan(
    raw_spec: Mapping[str, Any],
    *,
    namespace: str,
    settings: Policy,
    secrets: SecretReader,
    templates: TemplateSource | None = None,
) -> RunPlan:
    spec = validation.parse_spec(raw_spec)  # SpecError names every field that is wrong
    spec, template = await resolve_template(spec, templates)
    executor, cluster_kind = executor_of(spec)
    what = f"executor {executor}" if executor != "Dask" else "Dask cluster Local"
    # The one in-process policy: a Local executor or a LocalCluster runs user code in this
    # process (the operator's); the other cluster kinds run it on workers elsewhere.
    in_process = executor != "Dask" or cluster_kind == "Local"
    if in_process and not settings.allow_in_process:
        raise FlowRunError("InProcessExecutionRefused", IN_PROCESS_REFUSED.format(what=what))
    plan = make_plan(spec, secret_values=await resolve_secrets(spec, namespace, secrets))
    plan = dataclasses.replace(plan, template=template)
    # An inline flow is checked whole before any cluster starts (a template's, when resolved).
    if "ref" not in plan.flow and template is None:
        flows.inline_graph(plan.flow)
    return plan
