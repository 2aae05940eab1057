"""Manifest checks: each problem named by its field, all problems at once."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun.api import validation
from flowrun.api.validation import DeclaredParameter, SpecError


def inline(**spec: Any) -> dict[str, Any]:
    flow = {
        "tasks": [
            {"name": "a", "fn": "m:a"},
            {"name": "b", "fn": "m:b", "upstream": ["a"]},
        ],
        "parameters": [{"name": "date", "required": True}, {"name": "limit", "default": 10}],
    }
    return {"flow": flow, "parameters": {"date": "2026-11-23"}, **spec}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        validation.parse_spec(raw)
    return list(caught.value.problems)


def test_a_good_spec_parses_with_defaults() -> None:
    spec = validation.parse_spec(inline(startTasks=["b"], taskStates={"a": {"result": [1]}}))
    assert spec.start_tasks == ["b"]
    assert spec.task_states is not None
    assert spec.task_states["a"].state == "Success"
    assert spec.cancel is False


def test_unknown_tasks_are_named_with_the_known_ones() -> None:
    assert problems(inline(startTasks=["x"])) == [
        "spec.startTasks[0]: unknown task 'x'; known tasks: a, b"
    ]


def test_every_name_list_is_checked_at_once() -> None:
    raw = inline(returnTasks=["a", "y"], taskStates={"z": {}})
    raw["flow"]["referenceTasks"] = ["w"]
    raw["flow"]["tasks"][1]["upstream"] = ["v"]
    assert problems(raw) == [
        "spec.returnTasks[1]: unknown task 'y'; known tasks: a, b",
        "spec.taskStates.z: unknown task 'z'; known tasks: a, b",
        "spec.flow.referenceTasks[0]: unknown task 'w'; known tasks: a, b",
        "spec.flow.tasks[1].upstream[0]: unknown task 'v'; known tasks: a, b",
    ]


def test_parameters_must_be_declared_and_required_ones_given() -> None:
    raw = inline(parameters={"dat": "x"})
    assert problems(raw) == [
        "spec.parameters.dat: unknown parameter 'dat'; the flow declares: date, limit",
        "spec.parameters: missing required parameter 'date'",
    ]


def test_a_parameter_from_a_secret_counts_as_given() -> None:
    raw = inline(
        parameters={},
        parametersFrom=[{"name": "date", "secretKeyRef": {"name": "s", "key": "k"}}],
    )
    assert validation.parse_spec(raw).parameters_from is not None
    raw["parameters"] = {"date": "x"}
    assert problems(raw) == ["spec.parameters.date: also set by spec.parametersFrom"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"executor": {"type": "Foo"}}, "spec.executor.type: Input should be 'Local', "),
        ({"executor": {"dask": {"workers": 0}}}, "spec.executor.dask.workers: Input should be"),
        (
            {"executor": {"dask": {"cluster": "External"}}},
            "spec.executor.dask: dask.address is required when dask.cluster is External",
        ),
        (
            {"flow": {"ref": "a.b:c", "tasks": []}},
            "spec.flow: exactly one of flow.ref, flow.tasks and",
        ),
        (
            {"flow": {}},
            "spec.flow: exactly one of flow.ref, flow.tasks and flow.templateRef must be set",
        ),
        ({"flow": {"ref": "not a ref"}}, "spec.flow.ref: String should match pattern"),
        ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds: Input should be greater"),
        ({"startTask": ["a"]}, "spec.startTask: Extra inputs are not permitted"),
        (
            {"executor": {"dask": {"resources": {"requests": {"cpu": 1.5}}}}},
            "spec.executor.dask.resources.requests.cpu: Input should be a valid",
        ),
        ({"executor": {"dask": {"mapBatchSize": 0}}}, "spec.executor.dask.mapBatchSize: Input"),
        (
            {"runner": {"resources": {"limits": {"memory": "1GB"}}}},
            "spec.runner.resources.limits.memory: '1GB' is not a Kubernetes quantity (e.g. 50m",
        ),
        (
            {"runner": {"resources": {"requests": {"cpu": -1}}}},
            "spec.runner.resources.requests.cpu: -1 is not a Kubernetes quantity",
        ),
        (
            {"runner": {"resources": {"requests": {"memory": "-1Gi"}}}},
            "spec.runner.resources.requests.memory: '-1Gi' is not a Kubernetes quantity",
        ),
        ({"runner": {"resources": {"request": {}}}}, "spec.runner.resources.request: Extra"),
        ({"runner": {"cpu": 1}}, "spec.runner.cpu: Extra inputs are not permitted"),
        (
            {"flow": {"tasks": [{"name": "a", "fn": "m:f", "mapBatchSize": 2.5}]}},
            "spec.flow.tasks[0].mapBatchSize: Input should be a valid integer",
        ),
    ],
)
def test_shape_errors_name_the_field(change: dict[str, Any], expected: str) -> None:
    got = problems({**inline(), **change})
    assert any(p.startswith(expected) for p in got), got


def test_a_flow_ref_is_checked_against_the_resolved_flow() -> None:
    spec = validation.parse_spec({"flow": {"ref": "pkg.mod:flow"}, "startTasks": ["q"]})
    with pytest.raises(SpecError) as caught:
        validation.check_spec(
            spec,
            tasks=["p"],
            parameters=[DeclaredParameter("n", required=True)],
        )
    assert caught.value.problems == (
        "spec.startTasks[0]: unknown task 'q'; known tasks: p",
        "spec.parameters: missing required parameter 'n'",
    )


def test_long_task_lists_are_abbreviated() -> None:
    spec = validation.parse_spec({"flow": {"ref": "pkg.mod:flow"}, "returnTasks": ["nope"]})
    with pytest.raises(SpecError) as caught:
        validation.check_spec(spec, tasks=[f"t{i}" for i in range(500)], parameters=None)
    assert caught.value.problems[0].endswith("t8, t9, ... (490 more)")


def test_a_whole_manifest_checks_kind_and_version() -> None:
    with pytest.raises(SpecError) as caught:
        validation.parse_flowrun({"apiVersion": "v1", "kind": "FlowRun", "spec": inline()})
    assert caught.value.problems[0].startswith("apiVersion: Input should be 'flowrun.dev/v1alpha1'")
    with pytest.raises(SpecError, match="expected a FlowRun mapping"):
        validation.parse_flowrun(["not", "a", "mapping"])


def test_repeated_task_names_are_named() -> None:
    """The CRD refuses them at creation (a CEL rule); `flowrun run` and the operator too."""
    tasks = [{"name": n, "fn": "m:f"} for n in ("a", "b", "a", "c", "b")]
    with pytest.raises(SpecError, match=r"task names must be unique; repeated: \['a', 'b'\]"):
        validation.parse_spec({"flow": {"tasks": tasks}})


def test_too_deep_values_are_refused_naming_the_field() -> None:
    value: Any = 1
    for _ in range(200):
        value = [value]
    with pytest.raises(SpecError) as info:
        validation.parse_spec({"flow": {"tasks": [{"name": "a", "fn": "m:f", "args": [value]}]}})
    (problem,) = info.value.problems
    assert problem.startswith("spec.flow.tasks[0].args[0]")
    assert "nested deeper than 100 levels" in problem
