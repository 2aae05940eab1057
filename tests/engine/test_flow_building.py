"""Building flows: functional and imperative APIs, validation, graph queries."""

from __future__ import annotations

import pytest

from flowrun import Flow, Parameter, Task, task
from flowrun.engine.task import Collection, Constant
from flowrun.utilities.tasks import tags as tag_block


@task
def inc(x: int) -> int:
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task(nout=2)
def pair(x: int) -> tuple[int, int]:
    return x, x * 10


class Double(Task):
    def run(self, x: int) -> int:  # type: ignore[override]
        return 2 * x


def test_functional_api_builds_edges_and_keeps_constants_out_of_the_graph() -> None:
    with Flow("f") as flow:
        a = inc(1)
        b = add(a, y=5)
    assert flow.tasks == {a, b}
    assert {(e.upstream, e.downstream, e.key) for e in flow.edges} == {(a, b, "x")}
    assert flow.constants[a] == {"x": 1}
    assert flow.constants[b] == {"y": 5}
    assert a is not inc  # calling copies the task
    assert flow.run().result[b].result == 7


def test_imperative_api() -> None:
    flow = Flow("imperative")
    one, two = Double(name="one"), Double(name="two")
    flow.add_task(one)
    flow.add_edge(one, two, key="x")
    flow.set_dependencies(one, keyword_tasks={"x": 3})
    last = Double(name="last")
    flow.set_dependencies(last, upstream_tasks=[two], keyword_tasks={"x": one})
    assert flow.upstream_tasks(last) == {one, two}
    assert flow.root_tasks() == {one}
    assert flow.terminal_tasks() == {last}
    assert flow.sorted_tasks().index(two) < flow.sorted_tasks().index(last)
    state = flow.run()
    assert state.result[two].result == 12
    assert state.result[last].result == 12


def test_ordering_only_edges() -> None:
    with Flow("order") as flow:
        a = inc(1)
        b = inc(2, upstream_tasks=[a])
    assert flow.edges_to(b)[0].key is None
    assert flow.sorted_tasks() == (a, b)


def test_cycles_are_refused() -> None:
    flow = Flow("cycle")
    a, b, c = Double(), Double(), Double()
    flow.chain(a, b, c)
    with pytest.raises(ValueError, match="cycle"):
        flow.add_edge(c, a)
    with pytest.raises(ValueError, match="cycle"):
        flow.add_edge(a, a)


def test_duplicate_slugs_are_refused() -> None:
    flow = Flow("dup")
    flow.add_task(Double(slug="same"))
    with pytest.raises(ValueError, match="slug"):
        flow.add_task(Double(slug="same"))


def test_automatic_slugs_are_unique_and_readable() -> None:
    with Flow("slugs") as flow:
        a, b = inc(1), inc(2)
        p = Parameter("p")
    assert {a.slug, b.slug} == {"inc-1", "inc-2"}
    assert p.slug == "p"
    assert flow.task_by_slug("inc-2") is b


def test_argument_errors() -> None:
    with Flow("args") as flow:
        a = inc(1)
        with pytest.raises(TypeError):
            inc(1, 2)
        with pytest.raises(ValueError, match="no argument"):
            flow.add_edge(a, Double(), key="nope")
    with pytest.raises(ValueError, match="Flow context"):
        inc(1)


def test_parameters_must_be_roots() -> None:
    flow = Flow("p")
    with pytest.raises(ValueError, match="root"):
        flow.add_edge(Double(), Parameter("x"))


def test_reference_tasks_default_to_terminal_tasks() -> None:
    with Flow("ref") as flow:
        a = inc(1)
        b = inc(a)
    assert flow.reference_tasks() == {b}
    flow.set_reference_tasks([a])
    assert flow.reference_tasks() == {a}


def test_collections_of_tasks_become_collection_tasks() -> None:
    with Flow("coll") as flow:
        a, b = inc(1), inc(2)
        total = task(lambda xs: sum(xs))([a, b])  # noqa: PLW0108 - sum is positional-only
        named = task(lambda d: d["b"] - d["a"])({"a": a, "b": b})
    assert any(isinstance(t, Collection) for t in flow.tasks)
    state = flow.run()
    assert state.result[total].result == 5
    assert state.result[named].result == 1


def test_nout_unpacks_into_getitem_tasks() -> None:
    with Flow("nout") as flow:
        x, y = pair(2)
        z = add(x, y)
    assert flow.run().result[z].result == 22


def test_mapped_constants_become_constant_tasks() -> None:
    with Flow("const") as flow:
        m = inc.map([1, 2])
    assert any(isinstance(t, Constant) for t in flow.upstream_tasks(m))


def test_sorted_tasks_handles_long_chains() -> None:
    with Flow("chain") as flow:
        x = inc(0)
        for _ in range(5000):
            x = inc(x)
    order = flow.sorted_tasks()
    assert len(order) == 5001
    assert order[-1] is x
    position = {t: i for i, t in enumerate(order)}
    assert all(position[e.upstream] < position[e.downstream] for e in flow.edges)


def test_task_options() -> None:
    t = Double(name="d", max_retries=2, retry_delay=1.5, timeout=3, tags=["io"], cache_for=60)
    assert t.retry_delay.total_seconds() == 1.5
    assert t.timeout == 3.0
    assert t.tags == {"io"}
    assert t.cache_for is not None
    assert t.cache_for.total_seconds() == 60
    with pytest.raises(TypeError):
        Double(tags="io")

    with pytest.raises(ValueError, match="args"):  # refused where the class is defined

        class Bad(Task):
            def run(self, *args: int) -> None:  # type: ignore[override]
                pass


def test_task_decorator_with_and_without_arguments() -> None:
    @task(name="renamed", max_retries=1)
    def f() -> int:
        return 1

    assert f.name == "renamed"
    assert f.max_retries == 1
    assert inc.name == "inc"


def test_flow_run_validates_parameters() -> None:
    with Flow("params") as flow:
        a = Parameter("a")
        b = Parameter("b", default=2)
        c = add(a, b)
    with pytest.raises(ValueError, match="required parameters: a"):
        flow.run()
    with pytest.raises(ValueError, match="unexpected parameters: z"):
        flow.run(parameters={"a": 1, "z": 3})
    assert flow.run(a=1).result[c].result == 3
    assert flow.run(parameters={"a": 1, "b": 5}).result[c].result == 6


def test_flow_run_refuses_inside_its_own_block() -> None:
    with Flow("inside") as flow, pytest.raises(RuntimeError):
        flow.run()


def test_flow_copy_update_validate_and_queries_as_prefect() -> None:
    @task
    def one() -> int:
        return 1

    with Flow("a") as flow:
        with tag_block("io"):
            first = one()
        second = one()
    copied = flow.copy()
    with copied:
        extra = one()
    assert extra in copied.tasks
    assert extra not in flow.tasks
    assert flow.get_tasks(tags=["io"]) == [first]
    assert set(flow.get_tasks(task_type=type(first))) == {first, second}
    assert list(flow) == list(flow.sorted_tasks())
    assert flow.slugs[first] == first.slug
    other = Flow("b")
    other.update(flow)
    assert other.tasks == flow.tasks
    other.validate()
