"""Prefect 1.x behaviours a ported flow relies on, written from Prefect's documentation.

Each test names the documented behaviour; they run on the real executors.
"""

from __future__ import annotations

import datetime as dt
import pickle
import threading
from typing import Any

import pytest

import flowrun
from flowrun import Flow, Task, context, task
from flowrun.core import Edge
from flowrun.engine import signals
from flowrun.engine import state as states
from flowrun.engine.flow_runner import FlowRunner
from flowrun.engine.result import NoResult, Result
from flowrun.engine.task_runner import TaskRunner
from flowrun.utilities.debug import raise_on_exception
from flowrun.utilities.tasks import tags


@task
def one() -> int:
    return 1


@task
def boom() -> None:
    raise ValueError("boom")


def test_empty_reference_tasks_fall_back_to_terminal_tasks() -> None:
    with Flow("f") as flow:
        boom()
    flow.set_reference_tasks([])
    assert flow.run().is_failed()


@pytest.mark.parametrize(
    ("raised", "expected"),
    [(signals.FAIL("no"), states.Failed), (RuntimeError("bad handler"), states.Failed)],
)
def test_a_raising_flow_state_handler_gives_a_failed_flow_state(
    raised: BaseException, expected: type[states.State]
) -> None:
    def handler(flow: Any, old: states.State, new: states.State) -> None:
        if new.is_finished():
            raise raised

    with Flow("f", state_handlers=[handler]) as flow:
        one()
    final = flow.run()
    assert isinstance(final, expected)
    assert str(raised) in (final.message or "")


def test_pause_raised_in_a_task_state_handler_pauses_the_task() -> None:
    def handler(t: Any, old: states.State, new: states.State) -> None:
        if new.is_running():
            raise signals.PAUSE("wait for me")

    final = TaskRunner(task(lambda: 1, state_handlers=[handler])).run()
    assert isinstance(final, states.Paused)


def test_state_handlers_may_change_the_state_they_receive(executor_ld: Any) -> None:
    def annotate(t: Any, old: states.State, new: states.State) -> states.State:
        if new.is_successful():
            new.message = "annotated"
        return new

    def annotate_without_return(t: Any, old: states.State, new: states.State) -> None:
        if new.is_successful():
            new.message += "!"

    @task(state_handlers=[annotate, annotate_without_return])
    def two() -> int:
        return 2

    with Flow("f") as flow:
        t = two()
    final = flow.run(executor=executor_ld).result[t]
    assert final.is_successful()
    assert final.message == "annotated!"
    with pytest.raises(AttributeError):
        final.message = "recorded states stay immutable"


def test_flow_state_handler_may_change_the_flow_state() -> None:
    def handler(flow: Any, old: states.State, new: states.State) -> None:
        if new.is_finished():
            new.message = "done here"

    with Flow("f", state_handlers=[handler]) as flow:
        one()
    assert flow.run().message == "done here"


def test_context_around_a_run_and_context_argument_reach_tasks(executor_ld: Any) -> None:
    @task
    def read() -> tuple[Any, Any]:
        return context.get("outer"), context.get("given")

    with Flow("f") as flow:
        t = read()
    with flowrun.context(outer="o"):
        final = flow.run(executor=executor_ld, context={"given": "g"})
    assert final.result[t].result == ("o", "g")


def test_date_keys_are_in_the_context_and_a_given_date_is_kept() -> None:
    @task
    def read() -> tuple[Any, ...]:
        return tuple(context.get(k) for k in ("today_nodash", "yesterday_nodash", "date"))

    with Flow("f") as flow:
        t = read()
    when = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    # As in Prefect, the date keys derive from a given `date` (a datetime or ISO text).
    for given in (when, when.isoformat()):
        got = FlowRunner(flow).run(return_tasks=[t], context={"date": given}).result[t].result
        assert got == ("20240301", "20240229", when)
    # Text that is no date is kept as given; the date keys then use the current time.
    got = FlowRunner(flow).run(return_tasks=[t], context={"date": "soon"}).result[t].result
    today = dt.datetime.now(dt.UTC)
    assert got[0] in {today.strftime("%Y%m%d"), (today - dt.timedelta(days=1)).strftime("%Y%m%d")}
    assert got[2] == "soon"


def test_retry_signal_start_time_is_honoured() -> None:
    later = states.now() + dt.timedelta(hours=1)

    @task
    def again() -> None:
        raise signals.RETRY("later", start_time=later)

    final = TaskRunner(again).run()
    assert isinstance(final, states.Retrying)
    assert final.start_time == later


def test_a_signal_state_carries_the_signal_as_result() -> None:
    @task
    def skip() -> None:
        raise signals.SKIP("not today")

    final = TaskRunner(skip).run()
    assert isinstance(final, states.Skipped)
    assert isinstance(final.result, signals.SKIP)


def test_a_timed_out_state_carries_the_timeout_as_result() -> None:
    never = threading.Event()

    @task(timeout=0.2)
    def slow() -> None:
        never.wait(5)

    final = TaskRunner(slow).run()
    assert isinstance(final, states.TimedOut)
    assert isinstance(final.result, BaseException)


def test_loop_restarts_run_count_and_handlers_see_no_pending() -> None:
    seen: list[str] = []
    counts: list[int] = []

    def handler(t: Any, old: states.State, new: states.State) -> None:
        seen.append(type(new).__name__)

    @task(max_retries=1, retry_delay=0, state_handlers=[handler])
    def looper() -> int:
        counts.append(context.task_run_count)
        n = context.get("task_loop_count", 1)
        if n == 1 and context.task_run_count == 1:
            raise ValueError("first attempt fails")
        if n < 3:
            raise signals.LOOP(result=n)
        return n

    runner = TaskRunner(looper)
    first = runner.run()
    assert isinstance(first, states.Retrying)
    final = TaskRunner(looper).run(first.replace(start_time=states.now()))
    assert final.is_successful()
    assert final.result == 3
    assert counts == [1, 2, 1, 1]
    assert "Pending" not in seen


class Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("has a lock")
        self.lock = threading.Lock()


def test_failed_state_with_unpicklable_exception_pickles_with_its_repr() -> None:
    got = pickle.loads(pickle.dumps(states.Failed("f", result=Unpicklable())))
    assert isinstance(got, states.Failed)
    assert "Unpicklable" in got.result


def test_edge_takes_prefect_keyword_names() -> None:
    a, b = Task(), Task()
    edge = Edge(upstream_task=a, downstream_task=b, key="x")
    assert (edge.upstream_task, edge.downstream_task, edge.upstream) == (a, b, a)
    with pytest.raises(ValueError, match="identifier"):
        Edge(a, b, key="not valid")


def test_task_operators_build_tasks(executor_ld: Any) -> None:
    with Flow("ops") as flow:
        x = one()
        made = {
            "add": x + 2,
            "radd": 10 - x,
            "cmp": (x * 3) > 2,
            "eq": x.is_equal(1),
            "not": x.not_(),
            "pow": x**3,
            "item": flowrun.task(lambda: {"k": 5})()["k"],
        }
    final = flow.run(executor=executor_ld)
    got = {k: final.result[t].result for k, t in made.items()}
    assert got == {
        "add": 3,
        "radd": 9,
        "cmp": True,
        "eq": True,
        "not": False,
        "pow": 1,
        "item": 5,
    }


def test_bar_makes_a_dependency_not_an_or() -> None:
    a, b = Task(name="a"), Task(name="b")
    with Flow("f") as flow:
        a | b
    assert flow.upstream_tasks(b) == {a}


def test_states_take_prefect_constructor_arguments() -> None:
    made = states.Pending("m", 1, {"k": "v"}, {"x": 1})
    assert (made.message, made.result, made.context, made.cached_inputs) == (
        "m",
        1,
        {"k": "v"},
        {"x": 1},
    )
    assert states.Success()._result == NoResult
    hydrated = states.Success(result=Result(value=10, location="here"))
    assert hydrated.result == 10
    assert hydrated._result.location == "here"
    assert repr(states.Success("a message")) == '<Success: "a message">'


def test_retry_and_loop_counts_default_to_the_run_context() -> None:
    with context(task_run_count=5, task_loop_count=3):
        assert states.Retrying().run_count == 5
        assert states.Looped().loop_count == 3
        assert states.Scheduled().context["task_run_count"] == 5
    assert states.Retrying().run_count == 1


def test_meta_states_unwrap_nested_meta_states() -> None:
    inner = states.Pending()
    assert states.Queued(state=states.Submitted(state=inner)).state is inner
    assert states.Queued().is_scheduled()


def test_raise_on_exception_raises_the_task_error_out_of_flow_run() -> None:
    with Flow("f") as flow:
        boom()
    with raise_on_exception(), pytest.raises(ValueError, match="boom"):
        flow.run()
    assert flow.run().is_failed()


def test_context_takes_a_dict_and_can_be_changed_inside_its_block() -> None:
    with context({"a": 1}):
        assert context.a == 1
        assert context.setdefault("b", 2) == 2
        assert context.setdefault("b", 3) == 2
        context.a = 5
        context.update(c=3)
        assert (context.a, context.c) == (5, 3)
    assert "a" not in context
    assert "b" not in context
    assert pickle.loads(pickle.dumps(context)) is context


def test_mapped_children_are_a_list() -> None:
    with Flow("f") as flow:
        t = task(lambda x: x + 1).map([1, 2])
    final = flow.run().result[t]
    assert isinstance(final.map_states, list)
    assert final.result == [2, 3]


def test_task_api_as_prefect_documents_it() -> None:
    @task
    def pair(x: int, y: str = "s") -> tuple[int, str]:
        return x, y

    assert pair.nout == 2
    assert pair.inputs() == {
        "x": {"type": int, "required": True, "default": None},
        "y": {"type": str, "required": False, "default": "s"},
    }
    assert pair.outputs() == tuple[int, str]
    assert pair.logger.name == "flowrun.pair"
    with pytest.raises(ValueError, match="reserved"):

        class Bad(Task):
            def run(self, mapped: Any = None) -> None:  # type: ignore[override]
                pass

    with pytest.raises(ValueError, match="No Flow was passed"):
        Task().set_downstream(Task())
    with pytest.raises(AttributeError, match="foo"), Flow("f"):
        Task()(task_args={"foo": 1})
    assert Task(slug="s").copy().slug == "s"  # kept: FlowRuns name tasks by slug


def test_tags_block_and_unpacking_by_nout() -> None:
    @task(nout=2)
    def two() -> Any:
        return 1, 2

    with Flow("f") as flow, tags("etl"):
        a, b = two()
        c = a + b
    assert "etl" in c.tags
    assert flow.run().result[c].result == 3


@task
def ident(x: Any) -> Any:
    return x


@task
def fail_on_two(x: int) -> list[int]:
    if x == 2:
        raise ValueError("two")
    return [x, x]


@task
def skip_on_two(x: int) -> int:
    if x == 2:
        raise signals.SKIP("two")
    return x


def test_flatten_of_a_value_that_is_not_nested_passes_it_unchanged(executor_ld: Any) -> None:
    with Flow("f") as flow:
        out = ident.map(flowrun.flatten(ident([1, 2, 3])))
        whole = ident(flowrun.flatten(ident([1, 2])))
    final = flow.run(executor=executor_ld)
    assert final.result[out].result == [1, 2, 3]
    assert final.result[whole].result == [1, 2]


def test_flatten_over_a_failed_child_affects_only_its_element(executor_ld: Any) -> None:
    with Flow("f") as flow:
        nested = fail_on_two.map([1, 2, 3])
        out = ident.map(flowrun.flatten(nested))
    final = flow.run(executor=executor_ld)
    children = final.result[out].map_states
    assert [type(c).__name__ for c in children] == [
        "Success",
        "Success",
        "TriggerFailed",
        "Success",
        "Success",
    ]
    assert final.result[out].result[:2] == [1, 1]


def test_a_skipped_child_skips_only_its_element(executor_ld: Any) -> None:
    with Flow("f") as flow:
        first = skip_on_two.map([1, 2, 3])
        out = ident.map(first)
    final = flow.run(executor=executor_ld)
    assert isinstance(final.result[out], states.Mapped)
    assert [c.is_skipped() for c in final.result[out].map_states] == [False, True, False]
    assert final.result[out].result[0] == 1


def test_log_stdout_sends_prints_to_the_task_logger(caplog: pytest.LogCaptureFixture) -> None:
    @task(log_stdout=True)
    def chatty() -> int:
        print("hello from the task")
        return 1

    with caplog.at_level("INFO", logger="flowrun.chatty"):
        assert TaskRunner(chatty).run().is_successful()
    assert "hello from the task" in caplog.text


def test_edge_annotations_win_over_arguments() -> None:
    a, b = Task(), Task()
    assert Edge(flowrun.mapped(a), b, mapped=False).mapped is True
    assert Edge(flowrun.unmapped(a), b, mapped=True).mapped is False
    both = Edge(flowrun.flatten(flowrun.mapped(a)), b)
    assert (both.mapped, both.flattened, both.upstream_task) == (True, True, a)
    assert both.tasks == {a, b}


def test_resuming_a_map_over_a_result_less_upstream_fails_children_not_the_run() -> None:
    @task
    def nums() -> list[int]:
        return [1, 2]

    @task
    def inc(x: int) -> int:
        return x + 1

    with Flow("resume") as flow:
        n = nums()
        m = inc.map(n)
    given = {n: states.Success(), m: states.Mapped(map_states=[states.Pending()] * 2)}
    final = flow.run(task_states=given)
    assert final.is_failed()
    assert [type(c).__name__ for c in final.result[m].map_states] == ["Failed", "Failed"]


def test_a_handler_resuming_a_paused_task_still_runs_out_of_retries() -> None:
    runs: list[int] = []

    def handler(t: Any, old: states.State, new: states.State) -> states.State | None:
        if isinstance(new, states.Paused):
            return states.Resume()
        if old.is_running():
            raise signals.FAIL("cant pass go")
        return None

    @task(
        max_retries=2,
        retry_delay=dt.timedelta(0),
        state_handlers=[handler],
        trigger=flowrun.triggers.manual_only,
    )
    def fail() -> None:
        runs.append(1)

    assert Flow("huh", tasks=[fail]).run().is_failed()
    assert len(runs) == 3


def test_a_loop_that_fails_mid_way_retries_from_the_same_iteration() -> None:
    counts: list[int] = []

    @task(max_retries=1, retry_delay=dt.timedelta(0))
    def looper(x: int) -> int:
        counts.append(context.task_run_count)
        loop = context.get("task_loop_count", 1)
        if loop == 2 and context.task_run_count == 1:
            raise ValueError("err")
        if loop < 5:
            raise signals.LOOP(result=context.get("task_loop_result", 0) + x)
        return int(context.task_loop_result) + x

    with Flow("looping") as flow:
        out = looper(1)
    final = flow.run()
    assert final.result[out].result == 5
    assert counts.count(2) == 1
