"""FlowTemplates without a cluster: the one model, the checks naming template and field, the
snapshot's encoding, and `plan.resolve_template` (the one place a template becomes a flow)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from typing import Any

import pydantic
import pytest

from flowrun.api import models, templates, validation
from flowrun.api.validation import SpecError
from flowrun.runs import plan
from flowrun.runs.outcome import FlowRunError

TASKS = [
    {"name": "a", "fn": "operator:add", "args": [1, 2]},
    {"name": "b", "fn": "operator:mul", "args": [{"task": "a"}, 10]},
]


def template(name: str = "etl", **flow: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowTemplate",
        "metadata": {"name": name, "uid": "u-1", "resourceVersion": "7", "generation": 2},
        "spec": {"flow": flow or {"tasks": TASKS}},
    }


class Source:
    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.bodies = {b["metadata"]["name"]: b for b in bodies}

    async def template_copy(self, name: str) -> plan.TemplateCopy:
        if name not in self.bodies:
            raise plan.TemplateMissing(name, "ns")
        return plan.TemplateCopy(body=self.bodies[name], config_map="fr-x-flow")


def run_spec(**spec: Any) -> models.FlowRunSpec:
    return validation.parse_spec({"flow": {"templateRef": {"name": "etl"}}, **spec})


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        ({"templateRef": {"name": "etl"}, "ref": "a.b:c"}, models.ONE_SOURCE),
        ({"templateRef": {"name": "etl"}, "tasks": TASKS}, models.ONE_SOURCE),
        (
            {"templateRef": {"name": "etl"}, "parameters": [{"name": "x"}]},
            "flow.parameters is only for inline flows",
        ),
        (
            {"templateRef": {"name": "etl"}, "referenceTasks": ["a"]},
            "flow.referenceTasks cannot be given with flow.templateRef",
        ),
        ({"templateRef": {"name": "Not_A_Name"}}, "spec.flow.templateRef.name: String should"),
    ],
)
def test_a_flowrun_names_its_template_alone(flow: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        validation.parse_spec({"flow": flow})
    assert message in str(caught.value)


def test_a_template_holds_a_flow_not_another_template() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"not another flow\.templateRef"):
        templates.FlowTemplateSpec.model_validate({"flow": {"templateRef": {"name": "x"}}})
    with pytest.raises(SpecError) as caught:
        templates.template_flow("t", template("t", templateRef={"name": "x"}))
    assert caught.value.problems == (
        f"FlowTemplate 't': spec.flow.templateRef: {templates.NO_NESTED}",
    )


@pytest.mark.parametrize(
    ("flow", "problem"),
    [
        (
            {"tasks": [*TASKS, {"name": "c", "fn": "x:y", "upstream": ["nope"]}]},
            "FlowTemplate 'etl': spec.flow.tasks[2].upstream[0]: unknown task 'nope'",
        ),
        (
            {"tasks": [{"name": "a", "fn": "not a function"}]},
            "FlowTemplate 'etl': spec.flow.tasks[0].fn: String should match pattern",
        ),
        (
            {"tasks": [{"name": "a", "fn": "x:y", "args": [{"task": "gone"}]}]},
            "FlowTemplate 'etl': spec.flow.tasks[0].args[0]: unknown task 'gone'",
        ),
    ],
)
def test_a_template_flow_is_checked_as_an_inline_one(flow: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError) as caught:
        templates.template_flow("etl", template(**flow))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_the_snapshot_is_gzip_json_of_identity_and_flow() -> None:
    body = {**template(), "status": {"ignored": True}}
    body["metadata"]["managedFields"] = [{"big": "x" * 1000}]
    encoded = templates.encode(body)
    raw = json.loads(gzip.decompress(base64.b64decode(encoded)))
    assert raw == {
        "metadata": {"name": "etl", "uid": "u-1", "resourceVersion": "7", "generation": 2},
        "spec": {"flow": {"tasks": TASKS}},
    }
    assert templates.decode(encoded) == raw
    assert templates.origin(raw, "cm") == {
        "name": "etl",
        "uid": "u-1",
        "resourceVersion": "7",
        "generation": 2,
        "configMap": "cm",
    }


def test_a_big_flow_snapshot_fits_a_configmap() -> None:
    tasks = [
        {"name": f"t{i:05d}", "fn": "frtasks:add", "args": [i, 1], "upstream": [f"t{i - 1:05d}"]}
        for i in range(1, models.MAX_TASKS)
    ]
    encoded = templates.encode(template(tasks=[{"name": "t00000", "fn": "x:y"}, *tasks]))
    assert len(encoded) < 1024 * 1024 // 4  # gzip: a small part of a ConfigMap's 1 MiB


def test_resolve_template_gives_the_run_the_template_flow_and_its_origin() -> None:
    spec = run_spec(returnTasks=["b"], startTasks=["a"])
    resolved, origin = asyncio.run(plan.resolve_template(spec, Source(template())))
    assert resolved.flow.tasks is not None
    assert [t.name for t in resolved.flow.tasks] == ["a", "b"]
    assert resolved.flow.template_ref is None
    assert resolved.return_tasks == ["b"]
    assert origin == {
        "name": "etl",
        "uid": "u-1",
        "resourceVersion": "7",
        "generation": 2,
        "configMap": "fr-x-flow",
    }


def test_the_run_s_names_are_checked_against_the_template_flow() -> None:
    spec = run_spec(returnTasks=["zz"])
    with pytest.raises(SpecError, match=r"spec.returnTasks\[0\]: unknown task 'zz'"):
        asyncio.run(plan.resolve_template(spec, Source(template())))
    with_params = template(tasks=TASKS, parameters=[{"name": "x", "required": True}])
    with pytest.raises(SpecError) as caught:
        asyncio.run(plan.resolve_template(run_spec(), Source(with_params)))
    assert caught.value.problems == ("spec.parameters: missing required parameter 'x'",)
    resolved, _ = asyncio.run(
        plan.resolve_template(run_spec(parameters={"x": 1}), Source(with_params))
    )
    assert resolved.parameters == {"x": 1}


def test_a_missing_template_is_a_pending_wait_naming_the_field() -> None:
    with pytest.raises(plan.TemplateMissing) as caught:
        asyncio.run(plan.resolve_template(run_spec(), Source()))
    assert caught.value.phase == "Pending"
    assert caught.value.reason == "TemplateNotFound"
    assert caught.value.message.startswith("spec.flow.templateRef.name: FlowTemplate 'etl'")
    with pytest.raises(FlowRunError, match=r"spec\.flow\.templateRef\.name"):
        asyncio.run(plan.resolve_template(run_spec(), None))


def test_build_plan_runs_the_template_flow() -> None:
    class NoSecrets:
        async def read_secret(self, namespace: str, name: str) -> None:
            return None

    raw = {"flow": {"templateRef": {"name": "etl"}}, "executor": {"type": "Local"}}
    built = asyncio.run(
        plan.build_plan(
            raw,
            namespace="ns",
            settings=plan.Policy(allow_in_process=True),
            secrets=NoSecrets(),
            templates=Source(template()),
        )
    )
    assert [t["name"] for t in built.flow["tasks"]] == ["a", "b"]
    assert built.template is not None
    assert built.template["name"] == "etl"
