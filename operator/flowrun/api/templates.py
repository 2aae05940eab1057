"""The FlowTemplate resource: a flow defined once, run by FlowRuns that name it.

A FlowTemplate's `spec.flow` is the FlowRun's `spec.flow` model (`models.Flow`), so the CRD
declares the same schema and CEL rules, and the same checks apply. A FlowRun with
`spec.flow.templateRef` copies the template's flow when it starts (the snapshot), and every
later step of the run reads that copy: an edit or deletion of the template never changes a run.

This module holds what both front ends share: the models, `template_flow` (a template's flow,
checked as an inline one, errors naming the template and the field), `with_template` (a spec
whose flow is the template's), and the snapshot's encoding (gzip'd JSON: a flow as large as a
FlowRun may be fits in a ConfigMap's 1 MiB).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from typing import Any, Literal

import pydantic
from pydantic import ConfigDict, Field, model_validator

from flowrun.api import flows, models, validation
from flowrun.api.validation import SpecError

KIND = "FlowTemplate"
PLURAL = "flowtemplates"
SHORT_NAMES = ["ft"]
SNAPSHOT_KEY = "flow.json.gz"  # binaryData key of the snapshot ConfigMap
NO_NESTED = "a FlowTemplate's flow is flow.ref or flow.tasks, not another flow.templateRef"


class FlowTemplateSpec(models.Model):
    """A flow, defined once: FlowRuns run it through `spec.flow.templateRef`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "!has(self.flow.templateRef)", "message": f"spec.flow: {NO_NESTED}"},
                {
                    # The flow's own rule checks unique names at creation only (a FlowRun's
                    # flow never changes after); a template's may be edited: check edits too.
                    "rule": "!oldSelf.hasValue() || !has(self.flow.tasks) || size(self.flow"
                    ".tasks.transformMapEntry(i, t, {t.name: i})) == size(self.flow.tasks)",
                    "optionalOldSelf": True,
                    "message": "spec.flow.tasks: task names must be unique",
                },
            ]
        }
    )

    flow: models.Flow = Field(
        description="The flow, exactly as a FlowRun's spec.flow: `ref`, or inline `tasks` "
        "(with `parameters` and `referenceTasks`)."
    )

    @model_validator(mode="after")
    def _not_nested(self) -> FlowTemplateSpec:
        if self.flow.template_ref is not None:
            raise ValueError(NO_NESTED)
        return self


class FlowTemplate(models.Model):
    """A whole FlowTemplate manifest."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["flowrun.dev/v1alpha1"]
    kind: Literal["FlowTemplate"]
    metadata: models.ObjectMeta = Field(default_factory=models.ObjectMeta)
    spec: FlowTemplateSpec


def _named(name: str, problems: list[str] | tuple[str, ...]) -> list[str]:
    return [f"FlowTemplate {name!r}: {line}" for line in problems]


def template_flow(name: str, body: Mapping[str, Any]) -> models.Flow:
    """The flow of the FlowTemplate `body`, checked as an inline flow would be; a `SpecError`
    names the template and the field (`FlowTemplate 'etl': spec.flow.tasks[3].upstream[0]: ...`).
    """
    spec = body.get("spec")
    flow = spec.get("flow") if isinstance(spec, Mapping) else None
    if not isinstance(flow, Mapping):
        raise SpecError(_named(name, ["spec.flow: required (flow.ref or flow.tasks)"]))
    if flow.get("templateRef") is not None:
        raise SpecError(_named(name, [f"spec.flow.templateRef: {NO_NESTED}"]))
    try:
        parsed = _parse(flow)
    except SpecError as err:
        raise SpecError(_named(name, err.problems), reason=err.reason) from None
    return parsed.flow


def _parse(flow: Mapping[str, Any]) -> models.FlowRunSpec:
    """The flow as a spec's, its names and graph checked; its parameters are the run's to give
    (`with_template` checks them against the FlowRun)."""
    if problems := validation.nesting_problems(flow, "spec.flow"):
        raise SpecError(problems)
    try:
        parsed = models.FlowRunSpec.model_validate({"flow": flow})
    except pydantic.ValidationError as err:
        raise SpecError(validation.format_validation_error(err, "spec")) from None
    if parsed.flow.tasks is not None:
        declared = [p.name for p in parsed.flow.parameters or []]
        names = [t.name for t in parsed.flow.tasks]
        validation.check_spec(parsed, tasks=names, parameters=None, given_parameters=declared)
        flows.inline_graph(flows.flow_dict(parsed))  # the whole graph, before any cluster
    return parsed


def with_template(spec: models.FlowRunSpec, flow: models.Flow) -> models.FlowRunSpec:
    """`spec` with its `templateRef` replaced by the template's flow (names checked again)."""
    resolved = spec.model_copy(update={"flow": flow})
    if flow.tasks is not None:
        names = [t.name for t in flow.tasks]
        validation.check_spec(resolved, tasks=names, parameters=None)
    return resolved


def origin(body: Mapping[str, Any], config_map: str | None) -> dict[str, Any]:
    """Which template (and version of it) a run copied: `status.template`."""
    meta = body.get("metadata") or {}
    out = {
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
        "generation": meta.get("generation"),
        "configMap": config_map,
    }
    return {k: v for k, v in out.items() if v is not None}


def encode(body: Mapping[str, Any]) -> str:
    """The snapshot of a FlowTemplate (its metadata's identity and `spec.flow`), as base64
    of gzip'd JSON for a ConfigMap's binaryData."""
    meta = body.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "uid", "resourceVersion", "generation") if k in meta}
    data = {"metadata": kept, "spec": {"flow": (body.get("spec") or {}).get("flow")}}
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode()


def decode(text: str) -> dict[str, Any]:
    """A snapshot's template body back (what `encode` was given, identity and flow)."""
    out: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(text)))
    return out
