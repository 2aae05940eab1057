"""The local control plane is a real Kubernetes API: these behaviours live in the API server and the
controller-manager, and a mock could not show them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane

GROUP = "tests.flowrun.dev"


def widget_crd(plural: str) -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": plural[:-1].title()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "colour": {"type": "string", "enum": ["red", "blue"]},
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"phase": {"type": "string"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def widgets(kubectl: object) -> Iterator[str]:
    """A namespaced CRD with a structural schema and a status subresource."""
    plural = f"widgets{uuid.uuid4().hex[:6]}"
    kubectl("apply", "-f", "-", input=json.dumps(widget_crd(plural)))  # type: ignore[operator]
    kubectl(  # type: ignore[operator]
        "wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=60s"
    )
    yield plural
    kubectl("delete", "crd", f"{plural}.{GROUP}", "--wait=false")  # type: ignore[operator]


def widget(plural: str, name: str, spec: dict[str, object]) -> str:
    kind = plural[:-1].title()
    return json.dumps(
        {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    )


def test_schema_refuses_an_invalid_object_naming_the_field(kubectl, namespace, widgets):
    result = kubectl(
        "apply", "-n", namespace, "-f", "-",
        input=widget(widgets, "bad", {"size": 0, "colour": "green"}), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "spec.size" in result.stderr
    assert "spec.colour" in result.stderr
    assert 'Unsupported value: "green"' in result.stderr
    missing = kubectl(
        "apply", "-n", namespace, "-f", "-", input=widget(widgets, "empty", {}), check=False
    )
    assert missing.returncode != 0
    assert "spec.size: Required value" in missing.stderr


def test_status_subresource_ignores_spec_changes(kubectl, namespace, widgets):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget(widgets, "w", {"size": 2}))
    patch = json.dumps({"spec": {"size": 99}, "status": {"phase": "Ready"}})
    kubectl(
        "patch", widgets, "w", "-n", namespace, "--subresource=status", "--type=merge", "-p", patch
    )
    obj = kubectl.json("get", widgets, "w", "-n", namespace)
    assert obj["status"] == {"phase": "Ready"}
    assert obj["spec"] == {"size": 2}
    # And the main resource ignores status: the other half of the subresource contract.
    kubectl(
        "patch", widgets, "w", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"size": 3}, "status": {"phase": "Hacked"}}),
    )  # fmt: skip
    obj = kubectl.json("get", widgets, "w", "-n", namespace)
    assert obj["spec"] == {"size": 3}
    assert obj["status"] == {"phase": "Ready"}


def test_a_user_without_rights_is_denied(kubectl, namespace, user_kubeconfig: Callable[..., Path]):
    impersonated = kubectl("get", "pods", "-n", namespace, "--as=nobody", check=False)
    assert impersonated.returncode != 0
    assert "Forbidden" in impersonated.stderr
    assert 'User "nobody" cannot list resource "pods"' in impersonated.stderr

    stranger = user_kubeconfig("stranger")
    denied = kubectl("get", "configmaps", "-n", namespace, kubeconfig=stranger, check=False)
    assert "Forbidden" in denied.stderr
    # Granting the right through RBAC is what lets the same identity in.
    kubectl("create", "role", "cm-reader", "-n", namespace, "--verb=list", "--resource=configmaps")
    kubectl(
        "create", "rolebinding", "cm-reader", "-n", namespace, "--role=cm-reader", "--user=stranger"
    )
    deadline = time.monotonic() + 30
    while True:
        allowed = kubectl("get", "configmaps", "-n", namespace, kubeconfig=stranger, check=False)
        if allowed.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert allowed.returncode == 0, allowed.stderr


def test_garbage_collector_deletes_dependents_of_a_deleted_owner(kubectl, namespace, widgets):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget(widgets, "owner", {"size": 1}))
    owner = kubectl.json("get", widgets, "owner", "-n", namespace)
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/v1",
                    "kind": owner["kind"],
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                }
            ],
        },
        "data": {"k": "v"},
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(dependent))
    kubectl("delete", widgets, "owner", "-n", namespace)
    # The collector re-discovers new resource types about every 30 s: poll, never sleep blindly.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = kubectl("get", "configmap", "dependent", "-n", namespace, check=False)
        if got.returncode != 0 and "NotFound" in got.stderr:
            return
        time.sleep(1)
    pytest.fail("the garbage collector did not delete the dependent ConfigMap within 120 s")
