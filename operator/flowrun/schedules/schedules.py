"""Schedule: clocks merged in time order, filtered and adjusted."""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flowrun.schedules import clocks

Filter = Callable[[dt.datetime], bool]
Adjustment = Callable[[dt.datetime], dt.datetime]
MAX_EVENTS_CHECKED = 10000


class Schedule:
    """Events of all `clocks`, kept when all `filters`, any `or_filters` (if given) and no
    `not_filters` match, then moved by each adjustment in turn."""

    def __init__(
        self,
        clocks: Iterable[clocks.Clock],
        filters: list[Filter] | None = None,
        or_filters: list[Filter] | None = None,
        not_filters: list[Filter] | None = None,
        adjustments: list[Adjustment] | None = None,
    ) -> None:
        if not isinstance(clocks, Iterable):
            raise TypeError("clocks should be a list of clocks.")
        self.clocks = list(clocks)
        self.filters = filters or []
        self.or_filters = or_filters or []
        self.not_filters = not_filters or []
        self.adjustments = adjustments or []

    @property
    def start_date(self) -> dt.datetime | None:
        return min((c.start_date for c in self.clocks if c.start_date), default=None)

    @property
    def end_date(self) -> dt.datetime | None:
        return max((c.end_date for c in self.clocks if c.end_date), default=None)

    def next(
        self, n: int, after: dt.datetime | None = None, return_events: bool = False
    ) -> list[Any]:
        """The next `n` times (or ClockEvents) after `after` (default: now)."""
        found: list[Any] = []
        for checked, event in enumerate(self._events(after), start=1):
            if self._keep(event.start_time):
                event.start_time = self._adjust(event.start_time)
                found.append(event if return_events else event.start_time)
            if len(found) == n or checked >= MAX_EVENTS_CHECKED:
                break
        return found

    def _events(self, after: dt.datetime | None) -> Iterator[clocks.ClockEvent]:
        merged = heapq.merge(*(c.events(after=after) for c in self.clocks))
        for _, same in itertools.groupby(merged):
            yield next(same)

    def _keep(self, when: dt.datetime) -> bool:
        return (
            all(f(when) for f in self.filters)
            and (not self.or_filters or any(f(when) for f in self.or_filters))
            and not any(f(when) for f in self.not_filters)
        )

    def _adjust(self, when: dt.datetime) -> dt.datetime:
        for adjust in self.adjustments:
            when = adjust(when)
        return when


def IntervalSchedule(
    start_date: dt.datetime | None = None,
    interval: dt.timedelta | None = None,
    end_date: dt.datetime | None = None,
) -> Schedule:
    if interval is None:
        raise TypeError("IntervalSchedule needs interval= (a timedelta).")
    return Schedule([clocks.IntervalClock(interval, start_date=start_date, end_date=end_date)])


def CronSchedule(
    cron: str,
    start_date: dt.datetime | None = None,
    end_date: dt.datetime | None = None,
    day_or: bool | None = None,
) -> Schedule:
    return Schedule(
        [clocks.CronClock(cron, start_date=start_date, end_date=end_date, day_or=day_or)]
    )
