"""Prefect 1.x runner behaviours from its docs and tests: the context a TaskRunner is made
in, state handlers chained on what the previous returned, errors logged and re-raised under
`raise_on_exception`, parameters from the context, the start time flow.run sets."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest

import flowrun
from flowrun import Flow, Parameter, Task, task
from flowrun.engine import signals
from flowrun.engine import state as states
from flowrun.engine.cache_validators import all_inputs, partial_inputs_only
from flowrun.engine.flow_runner import FlowRunner
from flowrun.engine.result import Result
from flowrun.engine.task_runner import TaskRunner
from flowrun.triggers import all_successful
from flowrun.utilities.debug import raise_on_exception


class Boom(Task):
    def run(self) -> None:
        raise ValueError("custom-error-message")


def test_a_task_runner_uses_the_context_it_was_made_in() -> None:
    with flowrun.context(chris="foo"):
        runner = TaskRunner(task(lambda: flowrun.context.get("chris")))
    assert runner.context["chris"] == "foo"
    assert runner.run().result == "foo"
    with flowrun.context(raise_on_exception=True), pytest.raises(ValueError, match="custom"):
        TaskRunner(Boom()).run()


def test_a_task_error_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert TaskRunner(Boom()).run().is_failed()
    assert "Task 'Boom': Exception encountered during task execution!" in caplog.text
    assert "ValueError: custom-error-message" in caplog.text


def test_state_handlers_are_chained_and_a_non_state_fails_as_in_prefect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []

    def second(task: Any, old: states.State, new: Any) -> None:
        seen.append(new)

    runner = TaskRunner(Task(state_handlers=[lambda *a: True, second]))
    state = runner.run()
    assert True in seen  # the second handler got what the first returned
    assert state.is_failed()
    assert any("state handler" in r.message and r.levelno == logging.ERROR for r in caplog.records)
    with raise_on_exception(), pytest.raises(AttributeError):
        TaskRunner(Task(state_handlers=[lambda *a: True])).run()
    # A signal raised by the task is its state, not an error, even under raise_on_exception.
    fail = task(lambda: (_ for _ in ()).throw(signals.FAIL("no")))
    with raise_on_exception():
        assert TaskRunner(fail).run().is_failed()


def test_a_naive_retry_time_is_taken_as_utc() -> None:
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=5)

    class Retry(Task):
        def run(self) -> None:
            raise signals.RETRY(start_time=later)

    state = TaskRunner(Retry()).run()
    assert state.is_retrying()
    assert state.start_time == later.replace(tzinfo=dt.UTC)


def test_parameters_may_come_in_the_context_and_given_ones_win() -> None:
    x, y = Parameter("x"), Parameter("y")
    flow = Flow("p", tasks=[x, y])
    final = FlowRunner(flow).run(
        parameters={"x": 2}, context={"parameters": {"x": 5, "y": 6}}, return_tasks=[x, y]
    )
    assert (final.result[x].result, final.result[y].result) == (2, 6)
    assert flow.run(context={"parameters": {"x": 1, "y": 1}}).is_successful()


def test_flow_run_sets_the_scheduled_start_time_itself() -> None:
    @task
    def start() -> Any:
        return flowrun.context.get("scheduled_start_time")

    flow = Flow("s", tasks=[start])
    got = flow.run(context={"scheduled_start_time": 42}).result[start].result
    assert isinstance(got, dt.datetime)
    assert dict(flowrun.context.items()) == flowrun.context.copy() == {}


def test_task_run_name_is_formatted_from_the_inputs_into_the_context() -> None:
    @task(task_run_name="hello-{x}")
    def named(x: int) -> Any:
        return flowrun.context.get("task_run_name")

    @task(task_run_name=lambda **inputs: f"call-{inputs['x']}")
    def called(x: int) -> Any:
        return flowrun.context.get("task_run_name")

    with Flow("names") as flow:
        by_template = named.map([1, 2])
        by_call = called(3)
    final = flow.run()
    assert final.result[by_template].result == ["hello-1", "hello-2"]
    assert final.result[by_call].result == "call-3"


def test_cache_validators_and_triggers_take_prefect_shaped_arguments() -> None:
    cached = states.Cached(cached_inputs={"x": Result(1), "s": Result("str")})
    assert all_inputs(cached, {"x": 1, "s": "str"}, None) is True
    assert all_inputs(cached, {"x": 1, "s": "other"}, None) is False
    assert partial_inputs_only(validate_on=["x"])(cached, {"x": 1, "s": "other"}, None) is True
    assert partial_inputs_only(validate_on=["x"])(cached, None, None) is False
    assert all_successful(set()) is True


def test_the_task_logger_is_in_the_context(caplog: pytest.LogCaptureFixture) -> None:
    @task(timeout=5)
    def log_it() -> None:
        flowrun.context.get("logger").critical("important log right here")

    assert Flow("logs", tasks=[log_it]).run().is_successful()
    found = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert [r.name for r in found] == ["flowrun.log_it"]


def test_stateful_triggers_pass_with_nothing_upstream_and_copy_keeps_a_target() -> None:
    from flowrun.engine.results import LocalResult  # noqa: PLC0415 - fsspec
    from flowrun.triggers import some_failed  # noqa: PLC0415

    assert some_failed(at_least=2, at_most=4)(set()) is True
    copied = Task().copy(target="target", result=LocalResult(dir="."))
    assert copied.result.location == "target"
    with pytest.raises(ValueError, match=r"call `Task\(...\).run\(...\)`"):
        Task()()


def test_flow_runner_gives_a_task_keyed_dict_and_a_finished_state_back_untouched() -> None:
    one = task(lambda: 1, name="one")
    flow = Flow("f", tasks=[one])
    final = FlowRunner(flow).run(return_tasks=[one])
    assert final == states.Success(result={one: states.Success(result=1)})
    assert final.result["one-1"].result == 1
    given = states.Success(result=5)
    assert FlowRunner(flow).run(state=given, return_tasks=[one]) is given
    not_run = flow.run(state=states.Success())
    assert not_run.is_successful()
    assert not_run.result[one].is_pending()


def test_task_run_name_template_reads_the_context_and_parameters() -> None:
    # Prefect's docs (concepts/templating): `task_run_name="{date:%A}-{date:%b}-{date:%d}"`
    # formats with context keys such as `date`, and flow parameters, besides the inputs.
    @task(task_run_name="{date:%A}-{flow_name}-{who}")
    def named() -> Any:
        return flowrun.context.get("task_run_name")

    with Flow("names") as flow:
        result = named()
    flow.add_task(Parameter("who", default="me"))
    final = flow.run(context={"date": dt.datetime(2026, 11, 30)})
    assert final.result[result].result == "Monday-names-me"


def test_a_missing_context_attribute_fails_the_task_as_in_prefects_docs() -> None:
    # Prefect's docs (concepts/execution, "Context"): the run without the key fails with
    # Prefect's AttributeError message; inside `with prefect.context(key=...)` it succeeds.
    @task
    def try_unlock() -> bool:
        if flowrun.context.key == "abc":
            return True
        raise signals.FAIL()

    with Flow("Using Context") as flow:
        unlock = try_unlock()
    failed = flow.run()
    assert failed.is_failed()
    error = failed.result[unlock].result
    assert isinstance(error, AttributeError)
    assert str(error) == "'Context' object has no attribute 'key'"
    with flowrun.context(key="abc"):
        assert flow.run().result[unlock].result is True
