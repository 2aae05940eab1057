"""Serializers for results: bytes <-> values (`prefect.engine.serializers`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import cloudpickle


class Serializer:
    def serialize(self, value: Any) -> bytes:
        raise NotImplementedError

    def deserialize(self, value: bytes) -> Any:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class PickleSerializer(Serializer):
    """cloudpickle, so functions and local classes survive."""

    def serialize(self, value: Any) -> bytes:
        data: bytes = cloudpickle.dumps(value)
        return data

    def deserialize(self, value: bytes) -> Any:
        return cloudpickle.loads(value)


class JSONSerializer(Serializer):
    def serialize(self, value: Any) -> bytes:
        return json.dumps(value).encode()

    def deserialize(self, value: bytes) -> Any:
        return json.loads(value)


class DateTimeSerializer(Serializer):
    """ISO 8601 text."""

    def serialize(self, value: Any) -> bytes:
        if not isinstance(value, dt.datetime):
            raise TypeError(f"DateTimeSerializer needs a datetime, got {type(value).__name__}")
        return value.isoformat().encode()

    def deserialize(self, value: bytes) -> Any:
        return dt.datetime.fromisoformat(value.decode())


__all__ = ["DateTimeSerializer", "JSONSerializer", "PickleSerializer", "Serializer"]
