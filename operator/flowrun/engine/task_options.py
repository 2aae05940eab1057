"""Task options given in more than one form, made one form (and checked) where given."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable


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


def retry_on(
    value: type[BaseException] | Iterable[type[BaseException]] | None, max_retries: int | None
) -> frozenset[type[BaseException]] | None:
    """`retry_on` as a set of exception classes, checked as Prefect checks it."""
    if value is None:
        return None
    found = (value,) if isinstance(value, type) else tuple(value)
    if found and not max_retries:
        raise ValueError("A number of `max_retries` must be provided if `retry_on` is set.")
    for kind in found:
        if not isinstance(kind, type):
            raise TypeError(
                f"Invalid `retry_on` value {kind!r}. "
                f"Expected an exception type but got an instance of {type(kind).__name__}"
            )
        if not issubclass(kind, BaseException):
            raise TypeError(f"Invalid `retry_on` value {kind!r}. Expected an exception subclass.")
    return frozenset(found) or None


def check_retry_delay(retry_delay: object, max_retries: int | None) -> None:
    """A delay without retries is a mistake (Prefect refuses it too); retries without a
    delay are allowed here (they retry at once), unlike Prefect."""
    if retry_delay is not None and not max_retries:
        raise ValueError(
            "A `max_retries` argument greater than 0 must be provided if specifying a retry delay."
        )


def warn_uncached(cache_for: object, cache_validator: object, never_use: object) -> None:
    if cache_for is None and cache_validator is not None and cache_validator is not never_use:
        warnings.warn(
            "cache_validator provided without specifying cache expiration "
            "(cache_for); this Task will not be cached.",
            UserWarning,
            stacklevel=4,
        )
