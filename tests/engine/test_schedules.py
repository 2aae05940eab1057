"""Schedules as Prefect 1.x documents them, and Flow.run honouring a schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from flowrun import Flow, Parameter, task
from flowrun.schedules import CronSchedule, IntervalSchedule, Schedule, adjustments, clocks, filters

UTC = dt.UTC


def test_interval_schedule_counts_from_its_start() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    schedule = IntervalSchedule(start_date=start, interval=dt.timedelta(hours=6))
    after = dt.datetime(2024, 1, 1, 5, tzinfo=UTC)
    assert schedule.next(2, after=after) == [start.replace(hour=6), start.replace(hour=12)]


def test_interval_clock_refuses_bad_intervals() -> None:
    with pytest.raises(TypeError):
        clocks.IntervalClock(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="greater than 0"):
        clocks.IntervalClock(dt.timedelta(0))


def test_cron_schedule_and_filters_and_adjustments() -> None:
    after = dt.datetime(2024, 1, 5, 12, tzinfo=UTC)  # a Friday
    assert CronSchedule("0 9 * * *").next(1, after=after) == [
        dt.datetime(2024, 1, 6, 9, tzinfo=UTC)
    ]
    weekdays = Schedule([clocks.CronClock("0 9 * * *")], filters=[filters.is_weekday])
    assert weekdays.next(1, after=after) == [dt.datetime(2024, 1, 8, 9, tzinfo=UTC)]
    moved = Schedule([clocks.CronClock("0 9 * * *")], adjustments=[adjustments.next_weekday])
    assert moved.next(1, after=after) == [dt.datetime(2024, 1, 8, 9, tzinfo=UTC)]
    with pytest.raises(ValueError, match="Invalid cron"):
        CronSchedule("not cron")


def test_clocks_merge_in_time_order_without_duplicates() -> None:
    day = dt.datetime(2030, 1, 1, tzinfo=UTC)
    a = clocks.DatesClock([day, day + dt.timedelta(days=2)])
    b = clocks.DatesClock([day, day + dt.timedelta(days=1)])
    assert Schedule([a, b]).next(5) == [day + dt.timedelta(days=i) for i in range(3)]


def test_flow_run_runs_once_per_scheduled_time_with_its_parameters() -> None:
    now = dt.datetime.now(UTC)
    # Far enough ahead that a loaded machine's pause before `run` does not put them in the past.
    first = clocks.DatesClock([now + dt.timedelta(seconds=2)], parameter_defaults={"x": 1})
    second = clocks.DatesClock([now + dt.timedelta(seconds=2.5)])
    seen: list[Any] = []

    @task
    def record(x: Any) -> None:
        seen.append(x)

    with Flow("scheduled", schedule=Schedule([first, second])) as flow:
        record(Parameter("x", default=3))
    assert flow.run().is_successful()
    assert seen == [1, 3]
    seen.clear()
    flow.run(run_on_schedule=False)
    assert seen == [3]


def test_flow_run_with_an_exhausted_schedule_says_so() -> None:
    past = clocks.DatesClock([dt.datetime(2000, 1, 1, tzinfo=UTC)])
    with Flow("past", schedule=Schedule([past])) as flow:
        task(lambda: 1)()
    with pytest.raises(ValueError, match="no more scheduled runs"):
        flow.run()


def test_flow_run_result_is_a_task_dict() -> None:
    with Flow("d") as flow:
        a = task(lambda: 1)()
        b = task(lambda x: x + 1)(a)
    result = flow.run().result
    assert isinstance(result, dict)
    assert set(result) == {a, b}
    assert result[b].result == 2
    assert result[b.slug] is result[b]
