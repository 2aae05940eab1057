"""Prefect 1.x's Flow API as its docs describe it: replace, update, sorted_tasks(root_tasks=),
the flow in the context, the unused-task warning, terminal state handlers."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import flowrun
from flowrun import Flow, Parameter, Task, task
from flowrun.engine import state as states


@task
def add(x: int, y: int) -> int:
    return x + y


def test_a_flow_needs_a_name() -> None:
    with pytest.raises(ValueError, match="name must be provided"):
        Flow("")
    with pytest.raises(TypeError):
        Flow()  # type: ignore[call-arg]


def test_the_flow_is_in_the_context_inside_its_block_and_values_end_with_it() -> None:
    with Flow("outer") as outer:
        assert flowrun.context.flow is outer
        flowrun.context.name = "outer"
        with Flow("inner") as inner:
            assert flowrun.context.flow is inner
            flowrun.context["name"] = "inner"
        assert flowrun.context.name == "outer"
        assert flowrun.context.flow is outer
    assert "flow" not in flowrun.context
    assert "name" not in flowrun.context


def test_a_task_made_in_the_block_but_never_added_is_warned_of() -> None:
    with pytest.warns(UserWarning, match="created but not added"), Flow("f"):
        Parameter("unused")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Flow("g") as flow:
            x = Parameter("x")
            add(x, 1)
            extra = Task()
            flow.add_task(extra)


def test_replace_moves_edges_and_a_value_becomes_a_constant() -> None:
    with Flow("f") as flow:
        x, y = Parameter("x"), Parameter("y")
        total = add(x, y)
    flow.set_reference_tasks([total])
    copied = flow.copy()
    copied.replace(x, 55)
    assert x in flow.tasks
    assert x not in copied.tasks
    assert len(copied.tasks) == 3
    assert copied.run(y=6).result[total].result == 61
    assert flow.run(x=1, y=2).result[total].result == 3

    doubled = task(lambda x, y: 2 * (x + y), name="double")
    flow.replace(total, doubled)
    assert flow.reference_tasks() == {doubled}
    assert flow.run(x=1, y=2).result[doubled].result == 6
    with pytest.raises(ValueError, match="not found in Flow"):
        flow.replace(total, Task())


def test_update_renames_a_clashing_automatic_slug_and_merges_parameters() -> None:
    first, second = Flow("a"), Flow("b")
    t1, t2, t3 = Task(), Task(), Task()
    first.add_edge(t1, t2)
    second.add_edge(t2, t3)
    second.update(first)
    assert second.tasks == {t1, t2, t3}
    assert len({t.slug for t in second.tasks}) == 3

    with Flow("mine") as mine:
        mine_x = Parameter("x")
        out = add(mine_x, 1)
    with Flow("theirs") as theirs:
        their_x = Parameter("x", default=41)
        add(their_x, 0)
    mine.update(theirs, merge_parameters=True)
    assert mine.parameters() == {their_x}
    assert mine.run().result[out].result == 42


def test_sorted_tasks_from_root_tasks_and_errors_for_unknown_tasks() -> None:
    flow = Flow("f")
    t1, t2, t3, t4 = Task("1"), Task("2"), Task("3"), Task("4")
    flow.chain(t1, t2, t3)
    flow.add_edge(t1, t4)
    assert flow.sorted_tasks(root_tasks=[t2]) == (t2, t3)
    assert flow.all_upstream_edges()[t1] == set()
    assert {e.downstream for e in flow.all_downstream_edges()[t1]} == {t2, t4}
    stranger = Task()
    for query in (flow.edges_to, flow.edges_from, flow.upstream_tasks, flow.downstream_tasks):
        with pytest.raises(ValueError, match="not found in Flow"):
            query(stranger)
    with pytest.raises(ValueError, match="not found in Flow"):
        flow.sorted_tasks(root_tasks=[stranger])


def test_slugs_carry_tags_and_flows_compare_by_content() -> None:
    with Flow("one") as flow:
        Task("a")()
        Task("a", tags=["tag1"])()
    assert set(flow.slugs.values()) == {"a-1", "a-tag1-1"}
    assert flow.copy() == flow
    assert Flow("one") != flow


def test_a_terminal_state_handler_may_change_the_state_it_gets() -> None:
    def handler(flow: Any, state: states.State, reference: Any) -> states.State:
        state.message = "Custom message here"
        return state

    flow = Flow("f", terminal_state_handler=handler, tasks=[Task()])
    final = flow.run()
    assert final.is_successful()
    assert final.message == "Custom message here"


def test_parameter_copy_takes_a_new_name() -> None:
    x = Parameter("x", default=1)
    y = x.copy("y")
    assert (y.name, y.slug, y.default) == ("y", "y", 1)
