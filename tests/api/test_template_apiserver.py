"""The FlowTemplate CRD and `spec.flow.templateRef` against a real kube-apiserver: the same
schema and CEL rules as a FlowRun's flow, refusals naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.controlplane

TASKS = [
    {"name": "a", "fn": "operator:add", "args": [1, 2]},
    {"name": "b", "fn": "operator:mul", "args": [{"task": "a"}, 10]},
]


def body(kind: str, name: str, namespace: str, flow: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"flow": flow},
        }
    )


def create(kubectl: Any, text: str) -> Any:
    return kubectl("create", "-f", "-", input=text, check=False)


def test_a_template_is_stored_listed_and_editable(
    installed: None, kubectl: Any, namespace: str
) -> None:
    made = create(kubectl, body("FlowTemplate", "etl", namespace, {"tasks": TASKS}))
    assert made.returncode == 0, made.stderr
    got = kubectl.json("get", "ft", "etl", "-n", namespace)
    assert got["spec"]["flow"]["tasks"] == TASKS
    edited = kubectl(
        "patch", "ft", "etl", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"flow":{"name":"renamed"}}}', check=False,
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr  # no immutability: each run keeps its copy
    twice = json.dumps({"spec": {"flow": {"tasks": [TASKS[0], TASKS[0]]}}})
    refused = kubectl("patch", "ft", "etl", "-n", namespace, "--type=merge", "-p", twice,
                      check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "spec.flow.tasks: task names must be unique" in refused.stderr, refused.stderr
    table = kubectl("get", "flowtemplates", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE"]
    text = kubectl("explain", "flowtemplate.spec.flow.tasks").stdout
    assert "An inline flow's tasks (unique names)." in text


@pytest.mark.parametrize(
    ("kind", "flow", "message"),
    [
        (
            "FlowRun",
            {"templateRef": {"name": "etl"}, "tasks": TASKS},
            "exactly one of flow.ref, flow.tasks and flow.templateRef must be set",
        ),
        (
            "FlowRun",
            {"templateRef": {"name": "etl"}, "referenceTasks": ["a"]},
            "flow.referenceTasks cannot be given with flow.templateRef",
        ),
        (
            "FlowRun",
            {"templateRef": {"name": "etl"}, "parameters": [{"name": "x"}]},
            "flow.parameters is only for inline flows",
        ),
        ("FlowRun", {"templateRef": {"name": "Bad_Name"}}, "spec.flow.templateRef.name"),
        ("FlowRun", {"templateRef": {}}, "spec.flow.templateRef.name: Required value"),
        (
            "FlowTemplate",
            {"templateRef": {"name": "other"}},
            "a FlowTemplate's flow is flow.ref or flow.tasks, not another flow.templateRef",
        ),
        (
            "FlowTemplate",
            {"tasks": [TASKS[0], TASKS[0]]},
            "flow.tasks: task names must be unique",
        ),
        ("FlowTemplate", {"tasks": [{"name": "a", "fn": "nope"}]}, "spec.flow.tasks[0].fn"),
        ("FlowTemplate", {}, "exactly one of flow.ref, flow.tasks and flow.templateRef"),
    ],
)
def test_refusals_name_the_field(
    installed: None,
    kubectl: Any,
    namespace: str,
    kind: str,
    flow: dict[str, Any],
    message: str,
) -> None:
    refused = create(kubectl, body(kind, "x", namespace, flow))
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr


def test_templateref_is_immutable_like_the_rest_of_the_flow(
    installed: None, kubectl: Any, namespace: str
) -> None:
    made = create(kubectl, body("FlowRun", "r", namespace, {"templateRef": {"name": "etl"}}))
    assert made.returncode == 0, made.stderr
    changed = kubectl(
        "patch", "fr", "r", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"flow":{"templateRef":{"name":"other"}}}}', check=False,
    )  # fmt: skip
    assert changed.returncode != 0
    assert "spec.flow is immutable" in changed.stderr, changed.stderr
    wide = kubectl("get", "fr", "r", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-1] == "TEMPLATE"
    assert wide[1].split()[-1] == "etl"
