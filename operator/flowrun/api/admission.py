"""The ValidatingAdmissionPolicy that keeps a FlowRun's `spec` immutable (except `cancel`).

Not CEL rules in the CRD schema: the API server evaluates a CRD's rules on every write of the
object, status writes included, and `self == oldSelf` on `spec.flow` walks every inline task
(about half of a status write's cost at 10,000 tasks; `benchmarks/status_writes.py`). This
policy matches UPDATE of the `flowruns` resource only, not the `flowruns/status` subresource,
and only when the API server has bumped `metadata.generation` (a change to `spec`): status
writes and metadata-only updates (finalizers, annotations) never evaluate it.

`crds/flowrun.yaml` carries the CRD, this policy and its binding (`flowrun crd`), so that every
`kubectl apply -f crds/` and the Helm chart install the three together.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NAME = "flowrun-spec-immutable.flowrun.dev"
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


def binding() -> dict[str, Any]:
    """Binds the policy to every namespace, denying what it refuses."""
    return {
        "apiVersion": _VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": NAME},
        "spec": {"policyName": NAME, "validationActions": ["Deny"]},
    }
