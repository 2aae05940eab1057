"""The FlowRun and FlowTemplate CustomResourceDefinitions, generated from `flowrun.api.models`.

Pydantic emits JSON Schema (2020-12 flavour, `$ref`s, `anyOf` with null for optionals); the API
server wants a *structural* OpenAPI v3 schema: every node typed, no `$ref`, no `anyOf` beyond
int-or-string, `x-kubernetes-preserve-unknown-fields` where values are free-form JSON. This
module is that translation, plus what only a CRD has: printer columns and the status subresource.
`spec` stays immutable once created (except `cancel`) through a ValidatingAdmissionPolicy
(`flowrun.api.admission`), not CEL rules in the schema, which the API server would evaluate on
every status write too.

`flowrun crd` prints `documents()` (the FlowRun CRD, the two policies and their bindings, the
FlowTemplate CRD) as YAML; `crds/flowrun.yaml` is that output, checked for drift by the test suite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from flowrun.api import admission, models, templates

PLURAL = "flowruns"
SHORT_NAMES = ["fr"]
MUTABLE_SPEC_FIELDS = frozenset({"cancel"})
_NULL = {"type": "null"}


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Inline `$ref`s and `allOf: [single]`, merging sibling keys over the target."""
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        node = {**defs[ref.rsplit("/", 1)[-1]], **node}
    all_of = node.pop("allOf", None)
    if all_of is not None:
        if len(all_of) != 1:
            raise ValueError(f"allOf with {len(all_of)} members is not structural")
        node = {**_resolve(all_of[0], defs), **node}
    return node


def structural(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """One pydantic JSON-Schema node as a structural OpenAPI v3 schema node."""
    node = _resolve(node, defs)
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        members = [m for m in any_of if m != _NULL]
        if node.get("x-kubernetes-int-or-string"):
            return {**_leaf(node), "anyOf": [{"type": "integer"}, {"type": "string"}]}
        if len(members) != 1:
            raise ValueError(f"anyOf {any_of} is not structural")
        node = {**_resolve(members[0], defs), **node}
        if node.get("default", ...) is None:
            del node["default"]
    if node.get("x-kubernetes-int-or-string"):
        return {**_leaf(node), "anyOf": [{"type": "integer"}, {"type": "string"}]}
    if node.get("x-kubernetes-preserve-unknown-fields"):
        # Free-form JSON: any type, kept as given. A dict of JSON values is an object.
        out = _leaf(node)
        out.pop("default", None)
        if node.get("type") == "object":
            out["type"] = "object"
        else:
            out["nullable"] = True  # a JSON value may be null (CEL needs to be told)
        return out
    out = _leaf(node)
    if "const" in node:
        out["enum"] = [node["const"]]
    if "exclusiveMinimum" in node:
        out.update(minimum=node["exclusiveMinimum"], exclusiveMinimum=True)
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: structural(v, defs) for k, v in node["properties"].items()}
    elif node.get("type") == "object":
        value = node.get("additionalProperties", True)
        if value in (True, {}) or value.get("x-kubernetes-preserve-unknown-fields"):
            out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            out["additionalProperties"] = structural(value, defs)
    if "items" in node:
        out["items"] = structural(node["items"], defs)
    if "type" not in out:
        raise ValueError(f"untyped schema node: {node}")
    return out


_KEEP = (
    "type",
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "maxProperties",
    "required",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)


def _leaf(node: Mapping[str, Any]) -> dict[str, Any]:
    """The keys a structural schema keeps as they are (no `title`, `$defs`, ...)."""
    return {k: node[k] for k in _KEEP if k in node}


def schema_of(model: type[models.Model]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True)
    return structural(raw, raw.get("$defs", {}))


def immutable_fields() -> list[str]:
    """The spec fields that keep their value once created (all but `cancel`), as in the CRD."""
    spec = schema_of(models.FlowRunSpec)
    return [name for name in spec["properties"] if name not in MUTABLE_SPEC_FIELDS]


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
    {
        "name": "Failed",
        "type": "integer",
        "jsonPath": ".status.failed",
        "description": "Tasks and mapped children that failed",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    {
        "name": "Template",
        "type": "string",
        "jsonPath": ".spec.flow.templateRef.name",
        "priority": 1,
    },
]


TEMPLATE_COLUMNS: list[dict[str, Any]] = [
    {"name": "Ref", "type": "string", "jsonPath": ".spec.flow.ref", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    description: str,
    properties: dict[str, Any],
    *,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    """One namespaced CRD of the group, served and stored at the one version."""
    root = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **properties,
        },
    }
    version: dict[str, Any] = {"name": models.API_VERSION, "served": True, "storage": True}
    if "status" in properties:
        version["subresources"] = {"status": {}}
    version |= {"additionalPrinterColumns": columns, "schema": {"openAPIV3Schema": root}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{models.API_GROUP}"},
        "spec": {
            "group": models.API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["all"],
            },
            "versions": [version],
        },
    }


def lean_task_map(status: dict[str, Any]) -> dict[str, Any]:
    """`status.tasks` as the API server gets it: one atomic value of free-form entries.

    On every write of the FlowRun the API server validates and prunes each entry of a typed
    map, and tracks each key in `managedFields` (as large as the map itself). A bounded task map
    of a big run (192 KiB) made a status write cost 88x a 1-task run's; atomic and untyped, 15x
    (benchmarks/status_writes.py). Only the operator writes status, from the same models the
    reference documents (`build(documented=True)`); tests check what it writes against them.
    """
    tasks = status["properties"]["tasks"]
    status["properties"]["tasks"] = {
        "type": "object",
        "description": tasks["description"] + " Each entry's fields are in the reference.",
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-map-type": "atomic",
    }
    return status


def build(*, documented: bool = False) -> dict[str, Any]:
    """The FlowRun CRD as a plain dict; `documented`: with `status.tasks` typed, for people."""
    status = schema_of(models.FlowRunStatus)
    properties = {
        "spec": schema_of(models.FlowRunSpec),
        "status": status if documented else lean_task_map(status),
    }
    description = "A run of a flow on an ephemeral Dask cluster."
    return _crd(models.KIND, PLURAL, SHORT_NAMES, description, properties, columns=PRINTER_COLUMNS)


def build_template() -> dict[str, Any]:
    """The FlowTemplate CRD: its `spec.flow` is the FlowRun's `spec.flow` schema (one model)."""
    properties = {"spec": schema_of(templates.FlowTemplateSpec)}
    description = "A flow defined once; FlowRuns run it with spec.flow.templateRef."
    return _crd(
        templates.KIND,
        templates.PLURAL,
        templates.SHORT_NAMES,
        description,
        properties,
        columns=TEMPLATE_COLUMNS,
    )


def documents() -> list[dict[str, Any]]:
    """The CRD, the admission policy keeping `spec` immutable and its binding, the policy that
    warns of a big inline flow and its binding, then the FlowTemplate CRD (a template is edited
    freely: each run keeps the copy it started with)."""
    fields = immutable_fields()
    policy = admission.policy(models.API_GROUP, PLURAL, fields)
    big = admission.big_inline_policy(models.API_GROUP, PLURAL)
    warn = admission.binding(admission.BIG_INLINE_NAME, ("Warn",))
    return [build(), policy, admission.binding(), big, warn, build_template()]


def to_yaml() -> str:
    header = "# Generated by `flowrun crd` from flowrun.api.models; do not edit.\n"
    return header + yaml.safe_dump_all(documents(), sort_keys=False, width=100)
