"""From spec to engine: the inline-flow dict, resolution of flow.ref, given task states."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun.api import flows, models, validation
from flowrun.api.validation import SpecError
from flowrun.engine import cache_validators, graph, triggers
from flowrun.engine import state as states
from flowrun.examples import flows as example_flows


def spec_of(**spec: Any) -> Any:
    return validation.parse_spec(spec)


def test_parameter_requiredness_follows_prefect() -> None:
    spec = spec_of(
        flow={
            "parameters": [
                {"name": "a"},
                {"name": "b", "default": None},
                {"name": "c", "required": False},
                {"name": "d", "default": 1, "required": True},
            ],
            "tasks": [{"name": "t", "fn": "m:f"}],
        },
        parameters={"a": 1, "d": 2},
    )
    parsed = graph.from_dict(flows.flow_dict(spec))
    assert {p.name: p.required for p in parsed.parameters} == {
        "a": True,
        "b": False,
        "c": False,
        "d": True,
    }
    b = flows.flow_dict(spec)["parameters"][1]
    assert b == {"name": "b", "required": False, "default": None}


def test_a_missing_required_parameter_is_caught_before_the_engine() -> None:
    with pytest.raises(SpecError, match="missing required parameter 'a'"):
        spec_of(flow={"parameters": [{"name": "a"}], "tasks": [{"name": "t", "fn": "m:f"}]})


def test_the_inline_dict_is_the_engine_s_format() -> None:
    spec = spec_of(
        flow={
            "name": "f",
            "tasks": [
                {"name": "a", "fn": "m:f", "args": [1, None], "maxRetries": 2},
                {"name": "b", "fn": "m:g", "kwargs": {"x": {"task": "a", "map": True}}},
            ],
            "referenceTasks": ["b"],
        }
    )
    parsed = graph.from_dict(flows.flow_dict(spec))
    assert parsed.to_dict() == graph.from_dict(parsed.to_dict()).to_dict()
    assert parsed.tasks[0].max_retries == 2
    assert parsed.reference_tasks == ("b",)


def test_resolving_a_flow_ref_checks_names_against_it() -> None:
    resolved = flows.resolve(
        spec_of(flow={"ref": "flowrun.examples.flows:etl"}, parameters={"date": "x"})
    )
    assert resolved.tasks == ("date", "limit", "extract", "transform", "load")
    assert [(p.name, p.required) for p in resolved.parameters] == [
        ("date", True),
        ("limit", False),
    ]
    with pytest.raises(SpecError) as caught:
        flows.resolve(spec_of(flow={"ref": "flowrun.examples.flows:etl"}, startTasks=["lod"]))
    assert caught.value.problems == (
        "spec.startTasks[0]: unknown task 'lod'; known tasks: extract, transform, load",
        "spec.parameters: missing required parameter 'date'",
    )


def test_reference_tasks_of_a_flow_ref_do_not_change_the_module_s_flow() -> None:
    before = {t.slug for t in example_flows.etl.reference_tasks()}
    resolved = flows.resolve(
        spec_of(
            flow={"ref": "flowrun.examples.flows:etl", "referenceTasks": ["extract"]},
            parameters={"date": "x"},
        )
    )
    assert {t.slug for t in resolved.flow.reference_tasks()} == {"extract"}
    assert {t.slug for t in example_flows.etl.reference_tasks()} == before


def test_given_states_become_engine_states() -> None:
    spec = spec_of(
        flow={"tasks": [{"name": "a", "fn": "m:f"}, {"name": "b", "fn": "m:g"}]},
        taskStates={"a": {"result": [1]}, "b": {"state": "Failed", "message": "bad"}},
    )
    given = flows.given_states(spec)
    assert isinstance(given["a"], states.Success)
    assert given["a"].result == [1]
    assert isinstance(given["b"], states.Failed)
    assert given["b"].message == "bad"


def test_enums_in_the_crd_match_the_engine() -> None:
    assert {t.value for t in models.Trigger} == set(triggers.BY_NAME)
    assert {v.value for v in models.CacheValidator} == set(cache_validators.BY_NAME)
    for given in models.GivenState:
        assert issubclass(getattr(states, given.value), states.Finished), given
