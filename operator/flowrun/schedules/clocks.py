"""Clocks: endless (or bounded) sequences of ClockEvents, as Prefect 1.x's.

Times are timezone-aware; a naive datetime is taken as UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator
from typing import Any

from croniter import croniter

UTC = dt.UTC
DEFAULT_START = dt.datetime(2019, 1, 1, tzinfo=UTC)


def aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


@functools.total_ordering
class ClockEvent:
    """One scheduled time, with the parameter values and labels of its clock."""

    def __init__(
        self,
        start_time: dt.datetime,
        parameter_defaults: dict[str, Any] | None = None,
        labels: list[str] | None = None,
    ) -> None:
        self.start_time = aware(start_time)
        self.parameter_defaults = dict(parameter_defaults or {})
        self.labels = labels

    def _time(self, other: object) -> dt.datetime:
        if isinstance(other, ClockEvent):
            return other.start_time
        if isinstance(other, dt.datetime):
            return aware(other)
        raise TypeError(f"cannot compare ClockEvent and {type(other).__name__}")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dt.datetime):
            return self.start_time == aware(other)
        if not isinstance(other, ClockEvent):
            return False
        return (self.start_time, self.parameter_defaults, self.labels) == (
            other.start_time,
            other.parameter_defaults,
            other.labels,
        )

    def __lt__(self, other: object) -> bool:
        return self.start_time < self._time(other)

    def __hash__(self) -> int:
        return hash(self.start_time)

    def __repr__(self) -> str:
        return f"<{self.start_time},{self.labels},{self.parameter_defaults}>"


class Clock:
    def __init__(
        self,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
        parameter_defaults: dict[str, Any] | None = None,
        labels: list[str] | None = None,
    ) -> None:
        self.start_date = None if start_date is None else aware(start_date)
        self.end_date = None if end_date is None else aware(end_date)
        self.parameter_defaults = dict(parameter_defaults or {})
        self.labels = labels

    def _event(self, when: dt.datetime) -> ClockEvent:
        return ClockEvent(when, parameter_defaults=self.parameter_defaults, labels=self.labels)

    def events(self, after: dt.datetime | None = None) -> Iterable[ClockEvent]:
        raise NotImplementedError("Clock subclasses emit events")


class IntervalClock(Clock):
    """Every `interval` from `start_date` (default 2019-01-01 UTC).

    Whole days follow the wall clock of `start_date`'s time zone (a daily 9am run stays
    at 9am across DST); the rest of the interval is elapsed time.
    """

    def __init__(self, interval: dt.timedelta, start_date: dt.datetime | None = None, **kw: Any):
        if not isinstance(interval, dt.timedelta):
            raise TypeError("Interval must be a timedelta.")
        if interval.total_seconds() <= 0:
            raise ValueError("Interval must be greater than 0.")
        self.interval = interval
        super().__init__(start_date=start_date, **kw)

    def _nth(self, start: dt.datetime, n: int) -> dt.datetime:
        step = self.interval * n
        seconds = step.total_seconds() - step.days * 86400
        wall = start + dt.timedelta(days=step.days)
        return (wall.astimezone(UTC) + dt.timedelta(seconds=seconds)).astimezone(start.tzinfo)

    def events(self, after: dt.datetime | None = None) -> Iterator[ClockEvent]:
        after = aware(after) if after is not None else now()
        start = self.start_date or DEFAULT_START
        skip = max(0, int((after - start) / self.interval))
        while True:
            when = self._nth(start, skip)
            skip += 1
            if when <= after:
                continue
            if self.end_date is not None and when > self.end_date:
                return
            yield self._event(when)


class CronClock(Clock):
    """Times matching a cron string, in `start_date`'s time zone (default UTC)."""

    def __init__(
        self,
        cron: str,
        start_date: dt.datetime | None = None,
        day_or: bool | None = None,
        **kw: Any,
    ) -> None:
        if not croniter.is_valid(cron):
            raise ValueError(f"Invalid cron string: {cron}")
        self.cron = cron
        self.day_or = True if day_or is None else day_or
        super().__init__(start_date=start_date, **kw)

    def events(self, after: dt.datetime | None = None) -> Iterator[ClockEvent]:
        tz = self.start_date.tzinfo if self.start_date is not None else UTC
        after = (aware(after) if after is not None else now()).astimezone(tz)
        if self.start_date is not None:
            after = max(after, self.start_date - dt.timedelta(seconds=1))
        if after.microsecond:
            after = after.replace(microsecond=0) + dt.timedelta(seconds=1)
        cron = croniter(self.cron, after, day_or=self.day_or)
        for _ in range(10000):
            when = aware(cron.get_next(dt.datetime))
            if self.end_date is not None and when > self.end_date:
                return
            yield self._event(when)


class DatesClock(Clock):
    """Exactly the given times."""

    def __init__(self, dates: list[dt.datetime], **kw: Any) -> None:
        self.dates = [aware(d) for d in dates]
        super().__init__(start_date=min(self.dates), end_date=max(self.dates), **kw)

    def events(self, after: dt.datetime | None = None) -> Iterator[ClockEvent]:
        after = aware(after) if after is not None else now()
        yield from (self._event(d) for d in sorted(self.dates) if d > after)


__all__ = ["Clock", "ClockEvent", "CronClock", "DatesClock", "IntervalClock"]
