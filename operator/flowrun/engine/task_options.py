"""Task options given in more than one form, made one form (and checked) where given."""

from __future__ import annotations

import datetime as dt


def seconds(value: float | dt.timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def delta(value: float | dt.timedelta | None) -> dt.timedelta | None:
    if value is None or isinstance(value, dt.timedelta):
        return value
    return dt.timedelta(seconds=value)


def batch_size(value: int | None) -> int | None:
    """`map_batch_size`: None (adaptive) or a positive integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"map_batch_size must be a positive integer, got {value!r}")
    return value
