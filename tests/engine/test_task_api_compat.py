"""Task construction and the Task API as Prefect 1.x documents them (`prefect.core.task`).

Written from Prefect 1.4.1's docstrings: the retry options checked together, the warnings
a mistaken constructor call gets, `inspect.signature(task)`, `inputs()` with defaults,
`nout`, indexing, `pipe`, and Parameters.
"""

from __future__ import annotations

import datetime as dt
import inspect
import warnings
from typing import Any, Tuple  # noqa: UP035

import pytest

import flowrun
from flowrun import Flow, Parameter, Task, task
from flowrun.engine import cache_validators
from flowrun.engine.results import LocalResult, PrefectResult
from flowrun.engine.task_api import RESERVED_ATTRIBUTES
from flowrun.utilities.edges import flatten, mapped, unmapped
from flowrun.utilities.tasks import tags


class Add(Task):
    def run(self, x: int, y: int = 1) -> int:
        return x + y


def test_a_retry_delay_needs_retries() -> None:
    for retries in (None, 0, False):
        with pytest.raises(ValueError, match="`max_retries` argument greater than 0"):
            Task(retry_delay=dt.timedelta(seconds=30), max_retries=retries)
    assert Task(retry_delay=dt.timedelta(seconds=1), max_retries=1).max_retries == 1


def test_retry_on_needs_retries_and_exception_types() -> None:
    with pytest.raises(ValueError, match="`max_retries` must be provided"):
        Task(retry_on={RuntimeError})
    with pytest.raises(TypeError, match="exception type but got an instance of str"):
        Task(retry_on={"foo"}, max_retries=2)  # type: ignore[arg-type]
    assert Task(retry_on=OSError, max_retries=1).retry_on == {OSError}
    both = Task(retry_on=[RuntimeError, ValueError], max_retries=1)
    assert both.retry_on == {RuntimeError, ValueError}


def test_retry_on_still_limits_retries_in_a_run() -> None:
    calls: list[int] = []

    @task(max_retries=2, retry_on={KeyError})
    def boom() -> None:
        calls.append(1)
        raise ZeroDivisionError

    with Flow("retry-on") as flow:
        boom()
    assert flow.run().is_failed()
    assert len(calls) == 1


def test_a_validator_without_cache_for_is_warned_of() -> None:
    with pytest.warns(UserWarning, match="this Task will not be cached"):
        Task(cache_validator=cache_validators.all_inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Task(cache_validator=cache_validators.never_use)
        Task(cache_for=dt.timedelta(1), cache_validator=cache_validators.all_inputs)


def test_a_task_passed_to_a_constructor_is_warned_of() -> None:
    class Pair(Task):
        def __init__(self, a: Any, b: Any, **kwargs: Any) -> None:
            self.a, self.b = a, b
            super().__init__(**kwargs)

    with Flow("ctor"):
        upstream = Task()()
        with pytest.warns(UserWarning, match="A Task was passed as an argument to Pair"):
            made = Pair(1, upstream)()
    assert made.b is upstream
    assert "a" in inspect.signature(Pair).parameters  # the wrapper keeps the signature


def test_a_subclass_setting_a_reserved_attribute_is_warned_of() -> None:
    class Targeted(Task):
        def __init__(self, **kwargs: Any) -> None:
            self.target = "oh no!"
            super().__init__(**kwargs)

    with pytest.warns(UserWarning, match="`Targeted` sets a `target` attribute"):
        Targeted()


def test_reserved_attributes_are_what_task_init_sets() -> None:
    made = {name for name in vars(Task()) if not name.startswith("_")}
    assert made == RESERVED_ATTRIBUTES


def test_signature_of_a_task_is_run_and_the_call_options() -> None:
    class Test(Task):
        def run(self, x: int, y: bool, z: int = 1, **kwargs: Any) -> None:
            pass

    sig = inspect.signature(Test())
    for name, param in inspect.signature(Test().run).parameters.items():
        assert sig.parameters[name] == param
    assert {"mapped", "task_args", "upstream_tasks", "flow"} <= set(sig.parameters)
    assert list(sig.parameters)[-1] == "kwargs"
    assert sig.return_annotation == "Task"
    assert "name" in inspect.signature(Test).parameters


def test_an_uninspectable_callable_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="This function can not be inspected"):
        task(zip)


def test_inputs_report_defaults() -> None:
    assert Add().inputs() == {
        "x": {"type": int, "required": True, "default": None},
        "y": {"type": int, "required": False, "default": 1},
    }


def test_tags_of_the_context_are_added_when_bound() -> None:
    t1, t2 = Add(tags=["math"]), Add(tags=["math"])
    with tags("test"), Flow("tags"):
        t1.bind(1, 2)
        t3 = t2(1, 2)
    assert t1.tags == {"math", "test"}
    assert t3.tags == {"math", "test"}


def test_copy_of_a_wired_task_is_warned_of() -> None:
    t1, t2 = Task(), Task()
    with Flow("copy") as flow:
        t1.set_dependencies(downstream_tasks=[t2])
        with pytest.warns(UserWarning, match="You are making a copy"):
            flow.add_task(t1.copy())
    with Flow("other") as other, warnings.catch_warnings():
        warnings.simplefilter("error")
        other.add_task(t1.copy())


BARE_TUPLE: Any = Tuple  # noqa: UP006 - a bare `typing.Tuple` is what is tested


@pytest.mark.parametrize(
    ("returns", "nout"),
    [
        (int, None),
        (BARE_TUPLE, None),
        (tuple, None),
        (tuple[()], 0),
        (tuple[int, ...], None),
        (tuple[int, str], 2),
    ],
)
def test_nout_from_the_return_annotation(returns: Any, nout: int | None) -> None:
    def fn(a: Any) -> Any:
        return a

    fn.__annotations__["return"] = returns
    assert task(fn).nout == nout


def test_unpacking_needs_nout_and_a_mapped_task_has_none() -> None:
    @task(nout=2)
    def two(a: int) -> Any:
        return a + 1, a - 1

    @task
    def unknown(a: int) -> Any:
        return a, a

    with Flow("nout") as flow:
        with pytest.raises(TypeError, match="Task is not iterable"):
            _, _ = unknown(1)
        with pytest.raises(TypeError, match="Task is not iterable"):
            _, _ = two.map([1, 2])
        a, b = two(1)
    state = flow.run()
    assert (state.result[a].result, state.result[b].result) == (2, 0)


def test_indexing_names_the_key_and_keeps_the_result_options() -> None:
    with Flow("getitem") as flow:
        z = Parameter("z")[Parameter("a")]
        y = Parameter("y")["a"]
        kept = Task(checkpoint=False)()[0]
        stored = Task(checkpoint=True, result=LocalResult(dir="home"))[1]
    assert (z.name, y.name) == ("z[a]", "y['a']")
    assert kept.checkpoint is False
    assert isinstance(stored.result, LocalResult)
    assert stored.result.dir.endswith("home")
    assert flow.run(parameters={"z": {"k": 5}, "a": "k", "y": {"a": 1}}).result[z].result == 5


def test_pipe_refuses_self_and_passes_annotations_through() -> None:
    @task
    def add_one(number: int) -> int:
        return number + 1

    @task
    def total(numbers: list[int]) -> int:
        return sum(numbers)

    @task
    def anything(arg: Any, **kwargs: Any) -> Any:
        return kwargs

    with Flow("pipe") as flow:
        with pytest.raises(ValueError, match='keyword argument "self"'):
            anything(1).pipe(anything, self="x")
        result = add_one.map(range(5)).pipe(flatten).pipe(mapped).pipe(unmapped).pipe(total)
    assert flow.run().result[result].result == 15


def test_parameters_store_as_json_and_take_only_a_flow() -> None:
    x = Parameter("x")
    assert isinstance(x.result, PrefectResult)
    assert x.checkpoint is True
    for option in ("mapped", "task_args", "upstream_tasks"):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            x(**{option: None})
    with pytest.raises(TypeError, match="required positional argument"):
        x.copy()  # type: ignore[call-arg]
    with Flow("param") as flow:
        assert x() is x
    assert flow.run(parameters={"x": 3}, context={"checkpointing": True}).result[x].result == 3


def test_flowrun_tasks_exposes_its_submodules() -> None:
    assert flowrun.tasks.core.constants.Constant is not None
    assert flowrun.tasks.control_flow.merge is not None
