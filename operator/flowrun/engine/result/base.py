"""Result: a task's value with where and how it is stored (Prefect 1.x's Result API).

`location` is a template (`"{task_name}/{map_index}.pkl"`) formatted with the run's
context when the result is written, or a callable taking those values.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from flowrun.engine.serializers import PickleSerializer, Serializer


class ResultNotImplementedError(NotImplementedError):
    """The base Result class stores nothing: choose a subclass (LocalResult, S3Result, ...)."""


class Result:
    def __init__(
        self,
        value: Any = None,
        location: str | Callable[..., str] | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        self.value = value
        self.serializer = serializer if serializer is not None else PickleSerializer()
        self._formatter: Callable[..., str] | None = None
        self.location: str | None = None
        if isinstance(location, str) or location is None:
            self.location = location
        else:
            self._formatter = location

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        public = [a for a in vars(self) if not a.startswith("_")]
        return all(getattr(self, a) == getattr(other, a, object()) for a in public)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.value!r}>"

    def copy(self) -> Result:
        return copy.copy(self)

    def from_value(self, value: Any) -> Result:
        new = self.copy()
        new.location = None
        new.value = value
        return new

    @property
    def default_location(self) -> str:
        return f"{dt.datetime.now(dt.UTC):%Y/%m/%d}/{uuid.uuid4()}.flowrun_result"

    def format(self, **kwargs: Any) -> Result:
        """A copy whose location is rendered from the template (or the default)."""
        new = self.copy()
        if isinstance(new.location, str):
            new.location = new.location.format(**kwargs)
        elif new._formatter is not None:
            new.location = new._formatter(**kwargs)
        else:
            new.location = new.default_location
        return new

    def exists(self, location: str, **kwargs: Any) -> bool:
        raise ResultNotImplementedError(
            f"{type(self).__name__} stores nothing: use LocalResult, S3Result, ..."
        )

    def read(self, location: str) -> Result:
        raise ResultNotImplementedError(
            f"{type(self).__name__} stores nothing: use LocalResult, S3Result, ..."
        )

    def write(self, value_: Any, **kwargs: Any) -> Result:
        raise ResultNotImplementedError(
            f"{type(self).__name__} stores nothing: use LocalResult, S3Result, ..."
        )


class NoResultType(Result):
    """The absence of a computed value (unlike a Result whose value is None)."""

    def __repr__(self) -> str:
        return "<No result>"


NoResult = NoResultType()
