"""Flow as data: the inline dict format, its errors, round trips, and running from it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrun import Flow, Parameter, task
from flowrun.engine import FlowRunner, run_until_finished
from flowrun.engine import graph as g
from flowrun.engine import state as s


@task
def double(x: int) -> int:
    return 2 * x


@task
def plus(x: int, y: int = 0) -> int:
    return x + y


with Flow("example") as EXAMPLE_FLOW:
    EXAMPLE_OUT = plus(double(Parameter("n", default=3)), y=1)

INLINE: dict[str, Any] = {
    "name": "etl",
    "parameters": [{"name": "values", "required": True}, {"name": "offset", "default": 10}],
    "referenceTasks": ["load"],
    "tasks": [
        {
            "name": "extract",
            "fn": "builtins:list",
            "args": [{"parameter": "values"}],
            "tags": ["io"],
        },
        {
            "name": "transform",
            "fn": "operator:add",
            "args": [{"task": "extract", "map": True}, {"parameter": "offset"}],
            "maxRetries": 2,
            "retryDelaySeconds": 0.5,
            "timeoutSeconds": 30,
            "mapBatchSize": 2,
        },
        {
            "name": "load",
            "fn": "builtins:sorted",
            "args": [{"task": "transform"}],
            "kwargs": {"reverse": True},
            "trigger": "all_successful",
            "cacheForSeconds": 600,
            "cacheValidator": "all_inputs",
        },
        {
            "name": "note",
            "fn": "builtins:dict",
            "kwargs": {"spec": {"value": {"task": "not a reference"}}},
            "upstream": ["load"],
            "skipOnUpstreamSkip": False,
        },
    ],
}


def test_inline_dict_parses_into_a_graph() -> None:
    graph = g.from_dict(INLINE)
    assert graph.name == "etl"
    assert graph.reference_tasks == ("load",)
    transform = graph.tasks[1]
    assert transform.args[0] == g.Ref("task", "extract", map=True)
    assert transform.max_retries == 2
    assert transform.timeout_seconds == 30
    assert transform.map_batch_size == 2
    assert graph.tasks[0].map_batch_size is None
    assert graph.tasks[3].kwargs["spec"] == g.Literal({"task": "not a reference"})
    assert graph.parameters[0].required
    assert graph.parameters[1].default == 10


def test_round_trips_through_json() -> None:
    graph = g.from_dict(INLINE)
    again = g.FlowGraph.from_dict(json.loads(json.dumps(graph.to_dict())))
    assert again == graph


def test_a_graph_runs(executor_ld: Any) -> None:
    state = run_until_finished(
        g.from_dict(INLINE),
        executor=executor_ld,
        parameters={"values": [3, 1, 2]},
        return_tasks=["load", "note"],
    )
    assert state.is_successful()
    assert state.result["load"].result == [13, 12, 11]
    assert state.result["note"].result == {"spec": {"task": "not a reference"}}
    assert isinstance(state.result["transform"], s.Mapped)


def test_graph_missing_parameter_fails_the_parameter_task() -> None:
    state = FlowRunner(g.from_dict(INLINE)).run(return_tasks=["values"])
    assert state.is_failed()
    assert "required" in (state.result["values"].message or "")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["tasks"][1]["args"].__setitem__(0, {"task": "extarct"}),
            "tasks[1].args[0]: unknown task 'extarct'",
        ),
        (
            lambda d: d["tasks"][2]["kwargs"].__setitem__("rows", {"task": "nope", "map": True}),
            "tasks[2].kwargs.rows: unknown task 'nope'",
        ),
        (lambda d: d["tasks"][0].__setitem__("fn", "no-colon"), "tasks[0].fn:"),
        (lambda d: d["tasks"][0].__delitem__("fn"), "tasks[0].fn: is required"),
        (lambda d: d["tasks"][0].__setitem__("maxRetries", -1), "tasks[0].maxRetries:"),
        (
            lambda d: d["tasks"][0].__setitem__("retryDelaySeconds", "soon"),
            "tasks[0].retryDelaySeconds: must be a number",
        ),
        (
            lambda d: d["tasks"][0].__setitem__("timeoutSeconds", 0),
            "tasks[0].timeoutSeconds: must be greater than 0",
        ),
        (
            lambda d: d["tasks"][0].__setitem__("trigger", "sometimes"),
            "tasks[0].trigger: unknown trigger 'sometimes'",
        ),
        (
            lambda d: d["tasks"][0].__setitem__("cacheValidator", "maybe"),
            "tasks[0].cacheValidator: unknown cache validator",
        ),
        (
            lambda d: d["tasks"][0].__setitem__("skipOnUpstreamSkip", "yes"),
            "tasks[0].skipOnUpstreamSkip: must be true or false",
        ),
        (
            lambda d: d["tasks"][1].__setitem__("mapBatchSize", 0),
            "tasks[1].mapBatchSize: must be a positive integer",
        ),
        (lambda d: d["tasks"][0].__setitem__("colour", "red"), "tasks[0].colour: unknown field"),
        (
            lambda d: d["tasks"][0]["args"].__setitem__(0, {"parameter": "nope"}),
            "tasks[0].args[0]: unknown parameter 'nope'",
        ),
        (
            lambda d: d["tasks"][0]["args"].__setitem__(0, {"task": "load", "mapp": True}),
            "tasks[0].args[0].mapp: unknown field",
        ),
        (
            lambda d: d["tasks"][1].__setitem__("name", "extract"),
            "tasks[1].name: duplicate name 'extract'",
        ),
        (
            lambda d: d["tasks"][3].__setitem__("upstream", ["ghost"]),
            "tasks[3].upstream[0]: unknown task 'ghost'",
        ),
        (
            lambda d: d["tasks"][0].__setitem__("upstream", ["load"]),
            "tasks: the tasks form a cycle",
        ),
        (
            lambda d: d.__setitem__("referenceTasks", ["ghost"]),
            "referenceTasks[0]: unknown task 'ghost'",
        ),
        (lambda d: d["parameters"][0].__delitem__("name"), "parameters[0].name: is required"),
        (lambda d: d.__setitem__("tasks", {"a": 1}), "tasks: must be a list"),
        (lambda d: d.__setitem__("extra", 1), "extra: unknown field"),
    ],
)
def test_errors_name_the_path(mutate: Any, message: str) -> None:
    data = json.loads(json.dumps(INLINE))
    mutate(data)
    with pytest.raises(g.FlowGraphError) as err:
        g.from_dict(data)
    assert str(err.value).startswith(message)
    assert isinstance(err.value, ValueError)


def test_not_a_mapping() -> None:
    with pytest.raises(g.FlowGraphError, match="must be a mapping"):
        g.from_dict([1, 2])


def test_flow_to_graph_round_trip_runs_the_same() -> None:
    graph = EXAMPLE_FLOW.to_graph()
    data = json.loads(json.dumps(graph.to_dict()))
    assert data["parameters"] == [{"name": "n", "default": 3}]
    assert data["tasks"][0]["fn"] == f"{__name__}:double"
    rebuilt = g.from_dict(data)
    assert rebuilt == graph
    state = run_until_finished(rebuilt, parameters={"n": 5})
    assert state.result[EXAMPLE_OUT.slug].result == 11


def test_load_flow_imports_by_reference() -> None:
    assert g.load_flow(f"{__name__}:EXAMPLE_FLOW") is EXAMPLE_FLOW
    with pytest.raises(TypeError):
        g.load_flow(f"{__name__}:INLINE")


def test_lambdas_can_not_be_written_as_data() -> None:
    with Flow("lambda") as flow:
        task(lambda: 1)()
    with pytest.raises(g.FlowGraphError, match="module level"):
        flow.to_graph()


def test_a_retry_delay_without_retries_in_a_graph_has_no_effect() -> None:
    body = {
        "name": "delay-only",
        "tasks": [{"name": "one", "fn": "builtins:len", "args": [[1, 2]], "retryDelaySeconds": 5}],
    }
    state = run_until_finished(g.from_dict(body), return_tasks=["one"])
    assert state.result["one"].result == 2
