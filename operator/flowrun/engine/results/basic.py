"""Results kept in the state itself: PrefectResult (JSON text) and ConstantResult."""

from __future__ import annotations

from typing import Any

from flowrun.engine.result.base import Result
from flowrun.engine.serializers import DateTimeSerializer, JSONSerializer, Serializer


class PrefectResult(Result):
    """The location *is* the JSON of the value, so small results travel with the state."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", JSONSerializer())
        super().__init__(**kwargs)

    @property
    def serializer(self) -> Serializer:
        return self._serializer

    @serializer.setter
    def serializer(self, value: Serializer) -> None:
        if not isinstance(value, JSONSerializer | DateTimeSerializer):
            raise TypeError("PrefectResult only supports JSONSerializer or DateTimeSerializer")
        self._serializer = value

    def read(self, location: str) -> Result:
        new = self.copy()
        new.value = self.serializer.deserialize(location.encode())
        new.location = location
        return new

    def write(self, value_: Any, **kwargs: Any) -> Result:
        new = self.copy()
        new.value = value_
        new.location = self.serializer.serialize(value_).decode()
        return new

    def exists(self, location: str, **kwargs: Any) -> bool:
        try:
            self.serializer.deserialize(location.encode())
        except Exception:
            return False
        return True


class ConstantResult(Result):
    """A literal value known when the flow was built; it is never stored."""

    def __init__(self, **kwargs: Any) -> None:
        if "serializer" in kwargs:
            raise ValueError("Can't pass a serializer to a ConstantResult.")
        super().__init__(**kwargs)

    def read(self, location: str) -> Result:
        return self

    def write(self, value_: Any, **kwargs: Any) -> Result:
        raise ValueError("Cannot write values to `ConstantResult` types.")

    def exists(self, location: str, **kwargs: Any) -> bool:
        return True
