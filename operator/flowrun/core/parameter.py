"""`flowrun.core.parameter`, as `prefect.core.parameter`: Parameter and DateTimeParameter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from flowrun.engine.parameter import NO_DEFAULT, Parameter


class DateTimeParameter(Parameter):
    """A Parameter whose value is a timezone-aware datetime (an ISO 8601 string is parsed).

    A naive value is taken as UTC, as Prefect does.
    """

    def __init__(
        self,
        name: str,
        default: Any = NO_DEFAULT,
        required: bool = True,
        tags: Iterable[str] | None = None,
    ) -> None:
        super().__init__(name=name, default=default, required=required, tags=tags)

    def run(self) -> Any:
        value = super().run()
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(
                    f"Parameter {self.name!r}: {value!r} is not an ISO 8601 date-time."
                ) from exc
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if not isinstance(value, dt.datetime):
            raise TypeError(f"Parameter {self.name!r}: expected a date-time, got {value!r}.")
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


__all__ = ["DateTimeParameter", "Parameter"]
