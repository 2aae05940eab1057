"""Schedule adjustments: `datetime -> datetime` (Prefect's `prefect.schedules.adjustments`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable


def add(interval: dt.timedelta) -> Callable[[dt.datetime], dt.datetime]:
    return lambda d: d + interval


def next_weekday(d: dt.datetime) -> dt.datetime:
    """The same time on the next weekday, if `d` falls on a weekend."""
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d
