"""The CRDs `status_writes.py` compares: the committed one and variants of it, each under an API
group of its own so that all can be installed at once (loaded by file, as benchmarks/ is off
sys.path)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flowrun.api import admission, crd


@dataclass(frozen=True)
class Variant:
    label: str
    definition: dict[str, Any]
    as_string: bool = False  # the tasks' bytes as one string value instead of tasks
    policy: bool = False  # with the spec-immutability ValidatingAdmissionPolicy (after)
    # Created by client-side `kubectl apply` (Argo CD's default), which keeps a copy of the
    # whole object in the annotation kubectl.kubernetes.io/last-applied-configuration.
    client_apply: bool = False
    # The flow in a FlowTemplate of that many tasks; the FlowRun names it (spec.flow.templateRef).
    template: bool = False

    @property
    def group(self) -> str:
        group: str = self.definition["spec"]["group"]
        return group


def rules(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (schema path, CEL rule) of a schema."""
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations", []):
            yield path or ".", rule
        for key, child in node.items():
            if key != "x-kubernetes-validations":
                yield from rules(child, f"{path}.{key}" if key != "properties" else path)
    elif isinstance(node, list):
        for child in node:
            yield from rules(child, path)


def keep_only(definition: dict[str, Any], kept: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of the CRD with every CEL rule removed except `kept`."""
    out = copy.deepcopy(definition)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            mine = [r for r in node.pop("x-kubernetes-validations", []) if r == kept]
            if mine:
                node["x-kubernetes-validations"] = mine
            for child in node.values():
                strip(child)
        elif isinstance(node, list):
            for child in node:
                strip(child)

    strip(out)
    return out


def keyed_tasks(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of the CRD whose `flow.tasks` is a list keyed by name (as before it was atomic)."""
    out = copy.deepcopy(definition)
    spec = out["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    listed = spec["properties"]["flow"]["properties"]["tasks"]
    listed.update({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    return out


def in_group(definition: dict[str, Any], index: int) -> dict[str, Any]:
    """The same CRD under an API group of its own, so that variants can coexist."""
    out = copy.deepcopy(definition)
    group = f"v{index}.bench.{out['spec']['group']}"
    out["spec"]["group"] = group
    out["metadata"]["name"] = f"{out['spec']['names']['plural']}.{group}"
    return out


def with_cel_immutability(definition: dict[str, Any]) -> dict[str, Any]:
    """The CRD as it was: spec immutability as CEL rules in its schema (run on every write)."""
    out = copy.deepcopy(definition)
    spec = out["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    fields = crd.immutable_fields()
    for name in fields:
        rule = {"rule": "self == oldSelf", "message": f"spec.{name} is immutable"}
        spec["properties"][name].setdefault("x-kubernetes-validations", []).append(rule)
    presence = " && ".join(f"has(self.{n}) == has(oldSelf.{n})" for n in fields)
    spec.setdefault("x-kubernetes-validations", []).append({"rule": presence})
    return out


def policy_for(group: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The committed admission policy and binding, for a variant's API group."""
    name = f"spec-immutable.{group}"
    policy = admission.policy(group, crd.PLURAL, crd.immutable_fields())
    binding = admission.binding()
    policy["metadata"]["name"] = binding["metadata"]["name"] = name
    binding["spec"]["policyName"] = name
    return policy, binding


def variants(diagnose: bool) -> list[Variant]:
    committed = crd.build()
    before = with_cel_immutability(committed)
    found = [
        Variant("before: immutability as CEL rules in the CRD", before),
        Variant("after: committed CRD + admission policy", committed, policy=True),
        Variant(
            "after, created by client-side kubectl apply", committed, policy=True, client_apply=True
        ),
        Variant(
            "after, the flow in a FlowTemplate (templateRef)", committed, policy=True, template=True
        ),
    ]
    if diagnose:
        bare = keep_only(committed, None)
        found += [
            Variant("no CEL rule at all", bare),
            Variant("before, flow.tasks keyed by name", keyed_tasks(before)),
            Variant("no CEL rule, flow.tasks keyed by name", keyed_tasks(bare)),
            Variant("after, the tasks' bytes as one string", committed, True, True),
        ]
        for path, rule in rules(before["spec"]["versions"][0]["schema"]):
            where = path.removeprefix(".openAPIV3Schema")
            label = f"only `{rule['rule'][:40]}` at {where}"
            found.append(Variant(label, keep_only(before, rule)))
    return [
        Variant(
            v.label, in_group(v.definition, i), v.as_string, v.policy, v.client_apply, v.template
        )
        for i, v in enumerate(found)
    ]
