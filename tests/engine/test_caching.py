"""Caching: cache_for with validators, reuse across runs, injected Cached states."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from flowrun import Flow, Parameter, task
from flowrun.engine import cache_validators as cv
from flowrun.engine import caching
from flowrun.engine import state as s


def counting_task(tmp_path: Path, **options: Any) -> Any:
    counter = tmp_path / "runs"

    @task(**options)
    def work(x: int) -> int:
        counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
        return x * 2

    return work, lambda: int(counter.read_text()) if counter.exists() else 0


def test_cached_result_is_reused_across_runs(executor: Any, tmp_path: Path) -> None:
    work, runs = counting_task(tmp_path, cache_for=dt.timedelta(minutes=5))
    with Flow("cache") as flow:
        t = work(2)
    first = flow.run(executor=executor)
    second = flow.run(executor=executor)
    assert first.result[t].result == second.result[t].result == 4
    if executor.__class__.__name__ == "DaskExecutor":
        assert runs() == 2  # a Dask result dies with its client: nothing to reuse
    else:
        assert runs() == 1
        assert type(second.result[t]) is s.Cached


def test_duration_only_ignores_inputs_but_all_inputs_does_not(tmp_path: Path) -> None:
    work, _runs = counting_task(tmp_path, cache_for=60)
    with Flow("inputs") as flow:
        x = Parameter("x")
        t = work(x)
    assert flow.run(x=1).result[t].result == 2
    assert flow.run(x=2).result[t].result == 2  # Prefect's gotcha, kept on purpose
    (tmp_path / "strict").mkdir()
    strict, strict_runs = counting_task(
        tmp_path / "strict", cache_for=60, cache_validator=cv.all_inputs, name="strict"
    )
    with Flow("strict") as flow2:
        y = Parameter("y")
        u = strict(y)
    assert flow2.run(y=1).result[u].result == 2
    assert flow2.run(y=2).result[u].result == 4
    assert flow2.run(y=1).result[u].result == 2
    assert strict_runs() == 2


def test_never_use_and_expiry(tmp_path: Path) -> None:
    work, runs = counting_task(tmp_path, cache_for=60, cache_validator=cv.never_use)
    with Flow("never") as flow:
        work(1)
    flow.run()
    flow.run()
    assert runs() == 2


def test_injected_cached_state_is_used_when_valid(executor_ld: Any, tmp_path: Path) -> None:
    work, runs = counting_task(tmp_path, cache_for=60, cache_validator=cv.all_inputs)
    with Flow("inject") as flow:
        t = work(3)
    valid = s.Cached(
        result=99,
        hashed_inputs=cv.hash_inputs({"x": 3}),
        cached_result_expiration=s.now() + dt.timedelta(minutes=1),
    )
    assert flow.run(executor=executor_ld, task_states={t: valid}).result[t].result == 99
    caching.PROCESS_CACHE.clear()  # else the first run's Cached state would be reused
    expired = valid.replace(cached_result_expiration=s.now() - dt.timedelta(seconds=1))
    assert flow.run(executor=executor_ld, task_states={t: expired}).result[t].result == 6
    assert runs() == 1


@pytest.mark.parametrize(
    ("validator", "inputs", "params", "valid"),
    [
        (cv.never_use, {}, {}, False),
        (cv.duration_only, {"x": 9}, {}, True),
        (cv.all_inputs, {"x": 1, "y": 2}, {}, True),
        (cv.all_inputs, {"x": 1, "y": 3}, {}, False),
        (cv.all_parameters, {}, {"p": 1, "q": 2}, True),
        (cv.all_parameters, {}, {"p": 1}, False),
        (cv.partial_inputs_only(["x"]), {"x": 1, "y": 5}, {}, True),
        (cv.partial_inputs_only(["y"]), {"x": 1, "y": 5}, {}, False),
        (cv.partial_parameters_only(["p"]), {}, {"p": 1, "q": 7}, True),
        (cv.partial_parameters_only(["q"]), {}, {"p": 1, "q": 7}, False),
    ],
)
def test_validators(
    validator: cv.Validator, inputs: dict[str, Any], params: dict[str, Any], valid: bool
) -> None:
    cached = s.Cached(
        hashed_inputs=cv.hash_inputs({"x": 1, "y": 2}),
        cached_parameters={"p": 1, "q": 2},
        cached_result_expiration=s.now() + dt.timedelta(minutes=1),
    )
    assert validator(cached, inputs, params) is valid
    expired = cached.replace(cached_result_expiration=s.now() - dt.timedelta(seconds=1))
    assert validator(expired, inputs, params) is False
