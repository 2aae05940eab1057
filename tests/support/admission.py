"""Faults made by the API server itself: an admission policy refusing some writes in one namespace.

The dask-kubernetes operator's writes cannot be failed from outside its process but by the API
server; a ValidatingAdmissionPolicy does that for real, for as long as the test holds it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from flowrun.dev.helmop import HelmOperator
from flowrun.dev.waiting import wait_for


def refusal(
    name: str, namespace: str, *, resource: str, operations: list[str], expression: str,
    message: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """A policy refusing writes of `resource` (kubernetes.dask.org) in `namespace` only,
    where `expression` is false; and its binding."""
    rules = [{"apiGroups": ["kubernetes.dask.org"], "apiVersions": ["*"],
              "operations": operations, "resources": [resource]}]  # fmt: skip
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            "validations": [{"expression": expression, "message": message}],
        },
    }
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": selector},
        },
    }
    return [policy, binding]


@contextlib.contextmanager
def refusing(
    op: HelmOperator, policy: list[dict[str, Any]], probe: dict[str, Any], message: str
) -> Iterator[None]:
    """`policy` (from `refusal`) in force for the body: a binding is enforced a moment after it
    is made, so `probe` (an object it refuses with `message`) is tried first by a server-side
    dry run. Deleted after the body, also when it fails."""
    op.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                     "items": policy}))  # fmt: skip

    def refused() -> bool:
        out = op.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(probe),
                         check=False)  # fmt: skip
        return message in str(out.stderr)

    name = policy[0]["metadata"]["name"]
    try:
        wait_for(refused, timeout=60, what="the admission policy enforced")
        yield
    finally:
        op.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name,
                   "--ignore-not-found")  # fmt: skip
