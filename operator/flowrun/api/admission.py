"""The ValidatingAdmissionPolicy that keeps a FlowRun's `spec` immutable (except `cancel`).

Not CEL rules in the CRD schema: the API server evaluates a CRD's rules on every write of the
object, status writes included, and `self == oldSelf` on `spec.flow` walks every inline task
(about half of a status write's cost at 10,000 tasks; `benchmarks/status_writes.py`). This
policy matches UPDATE of the `flowruns` resource only, not the `flowruns/status` subresource,
and only when the API server has bumped `metadata.generation` (a change to `spec`): status
writes and metadata-only updates (finalizers, annotations) never evaluate it.

A second policy only warns: a FlowRun created with `BIG_INLINE_TASKS` inline tasks or more
carries its whole flow in every later write of its status, which the API server processes whole
(about 100x a small FlowRun's write at 10,000 tasks, however the CRD declares the tasks: the
bytes alone cost that). The flow belongs in a FlowTemplate, and the author should hear so when
applying, not from a slow cluster later. `kubectl` prints the warning; the FlowRun is created.

`crds/flowrun.yaml` carries the CRD, these policies and their bindings (`flowrun crd`), so that
every `kubectl apply -f crds/` and the Helm chart install them together.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NAME = "flowrun-spec-immutable.flowrun.dev"
BIG_INLINE_NAME = "flowrun-big-inline-flow.flowrun.dev"
# Inline tasks from which a FlowRun's status writes cost the API server well above a small one's
# (17-51x at 1,000 in `benchmarks/status_writes.py`); big runs' live status goes to a companion.
BIG_INLINE_TASKS = 1000
_VERSION = "admissionregistration.k8s.io/v1"


def _unchanged(field: str) -> dict[str, str]:
    new, old = f"object.spec.{field}", f"oldObject.spec.{field}"
    return {
        "expression": f"has({new}) == has({old}) && (!has({new}) || {new} == {old})",
        "message": f"spec.{field} is immutable (it cannot be set, changed or removed after "
        "creation); create a new FlowRun to run again",
        "reason": "Invalid",
    }


def policy(group: str, plural: str, fields: Iterable[str]) -> dict[str, Any]:
    """The policy: one validation per immutable spec field, so a refusal names its field."""
    return {
        "apiVersion": _VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NAME},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        # Not `<plural>/status`: status writes never pay for this policy.
                        "resources": [plural],
                    }
                ]
            },
            "matchConditions": [
                {
                    # The API server bumps the generation before admission when spec changed.
                    "name": "spec-changed",
                    "expression": "object.metadata.generation != oldObject.metadata.generation",
                }
            ],
            "validations": [_unchanged(field) for field in fields],
        },
    }


def big_inline_policy(group: str, plural: str) -> dict[str, Any]:
    """Warns at creation of a FlowRun with `BIG_INLINE_TASKS` inline tasks or more (`size` of a
    list is O(1): the policy costs nothing that grows with the flow)."""
    tasks = "object.spec.flow.tasks"
    return {
        "apiVersion": _VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": BIG_INLINE_NAME},
        "spec": {
            "failurePolicy": "Ignore",  # only advice: never in the way of a create
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": ["*"],
                        "operations": ["CREATE"],
                        "resources": [plural],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"!has(object.spec.flow) || !has({tasks}) "
                    f"|| size({tasks}) < {BIG_INLINE_TASKS}",
                    "messageExpression": f"'spec.flow.tasks: ' + string(size({tasks})) + "
                    "' inline tasks: the API server processes all of them on every status write "
                    "of this FlowRun (about 100x the write of a small FlowRun at 10,000 tasks); "
                    "define the flow once in a FlowTemplate and name it in "
                    "spec.flow.templateRef.name (docs/gitops.md, FlowTemplates)'",
                    "reason": "Invalid",
                }
            ],
        },
    }


def binding(name: str = NAME, actions: tuple[str, ...] = ("Deny",)) -> dict[str, Any]:
    """Binds policy `name` to every namespace: denying what it refuses, or only warning."""
    return {
        "apiVersion": _VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": list(actions)},
    }
