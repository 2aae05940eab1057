"""Prefect 1.x's Result classes, DateTimeParameter and LocalDaskExecutor, as documented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flowrun import Flow, task
from flowrun.core import DateTimeParameter
from flowrun.engine.result import NoResult, Result, ResultNotImplementedError
from flowrun.engine.results import ConstantResult, LocalResult, PrefectResult
from flowrun.engine.serializers import DateTimeSerializer, JSONSerializer
from flowrun.executors import LocalDaskExecutor


def test_local_result_writes_reads_and_formats_its_location(tmp_path: Path) -> None:
    result = LocalResult(dir=str(tmp_path), location="{task_name}/{map_index}.pkl")
    written = result.write({"a": [1, 2]}, task_name="load", map_index=3)
    assert written.location == str(tmp_path / "load" / "3.pkl")
    assert result.exists("load/3.pkl")
    assert not result.exists("load/4.pkl")
    assert result.read("load/3.pkl").value == {"a": [1, 2]}


def test_prefect_result_keeps_the_value_as_json_in_its_location() -> None:
    written = PrefectResult().write({"x": 1})
    assert written.location == '{"x": 1}'
    assert PrefectResult().read('{"x": 1}').value == {"x": 1}
    assert PrefectResult().exists("[1, 2]")
    assert not PrefectResult().exists("not json")
    with pytest.raises(TypeError):
        PrefectResult(serializer=object())  # type: ignore[arg-type]


def test_base_and_constant_results() -> None:
    with pytest.raises(ResultNotImplementedError):
        Result().write(1)
    assert ConstantResult(value=5).read("anything").value == 5
    with pytest.raises(ValueError, match="Cannot write"):
        ConstantResult(value=5).write(6)
    assert NoResult.value is None
    when = dt.datetime(2024, 1, 2, 3, tzinfo=dt.UTC)
    assert DateTimeSerializer().deserialize(DateTimeSerializer().serialize(when)) == when
    assert JSONSerializer().deserialize(JSONSerializer().serialize([1])) == [1]


def test_datetime_parameter_parses_iso_strings() -> None:
    @task
    def year(when: dt.datetime) -> int:
        return when.year

    with Flow("dt") as flow:
        y = year(DateTimeParameter("when"))
    assert flow.run(when="2024-05-01T10:00:00").result[y].result == 2024
    assert flow.run(when=dt.datetime(2023, 1, 1)).result[y].result == 2023
    assert flow.run(when="not a date").result[y].is_failed()


@pytest.mark.parametrize("scheduler", ["threads", "processes", "sync"])
def test_local_dask_executor_runs_a_flow(scheduler: str) -> None:
    @task
    def inc(x: int) -> int:
        return x + 1

    @task
    def add_up(xs: list[int]) -> int:
        return sum(xs)

    with Flow("ld") as flow:
        out = inc.map([1, 2, 3])
        total = add_up(out)
    state = flow.run(executor=LocalDaskExecutor(scheduler=scheduler))
    assert state.result[total].result == 9
    with pytest.raises(ValueError, match="scheduler"):
        LocalDaskExecutor(scheduler="nope")
