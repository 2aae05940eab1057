"""Schedule filters: `datetime -> bool` (Prefect's `prefect.schedules.filters`)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable

Filter = Callable[[dt.datetime], bool]


def on_datetime(when: dt.datetime) -> Filter:
    return lambda d: d == when


def between_datetimes(start: dt.datetime, end: dt.datetime) -> Filter:
    return lambda d: start <= d <= end


def on_date(month: int, day: int) -> Filter:
    return lambda d: (d.month, d.day) == (month, day)


def between_dates(start_month: int, start_day: int, end_month: int, end_day: int) -> Filter:
    """Between two days of every year; wraps around the new year when start > end."""

    def check(d: dt.datetime) -> bool:
        day = (d.month, d.day)
        if start_month <= end_month:
            return (start_month, start_day) <= day <= (end_month, end_day)
        return day >= (start_month, start_day) or day <= (end_month, end_day)

    return check


def at_time(t: dt.time) -> Filter:
    return lambda d: d.time() == t


def between_times(start: dt.time, end: dt.time) -> Filter:
    """Between two times of day; wraps around midnight when start > end."""

    def check(d: dt.datetime) -> bool:
        if start <= end:
            return start <= d.time() <= end
        return d.time() >= start or d.time() <= end

    return check


def is_weekday(d: dt.datetime) -> bool:
    return d.weekday() < 5


def is_weekend(d: dt.datetime) -> bool:
    return d.weekday() >= 5


def is_month_start(d: dt.datetime) -> bool:
    return d.day == 1


def is_month_end(d: dt.datetime) -> bool:
    return d.day == calendar.monthrange(d.year, d.month)[1]


def is_day_of_week(day_of_week: int) -> Filter:
    """Monday is 0, as `datetime.weekday()`."""
    return lambda d: d.weekday() == day_of_week
