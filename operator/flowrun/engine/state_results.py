"""The Result side of a State (Prefect 1.x's `state._result`, `load_result`, hierarchy helpers).

A state keeps its plain `result` value; `_result` presents it as a `Result`, keeping the
one the state was made with (its location and serializer) while the value is unchanged.
Loading returns a new state, since recorded states are immutable.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TypeVar

from flowrun.engine.result.base import NoResult, Result

S = TypeVar("S", bound="StateResults")


class StateResults:
    result: Any
    cached_inputs: dict[str, Any]

    def replace(self: S, **changes: Any) -> S:
        raise NotImplementedError

    @property
    def _result(self) -> Result:
        given: Result | None = self.__dict__.get("_given_result")
        if given is not None and given.value is self.result:
            return given
        if self.result is None:
            return NoResult
        return Result(value=self.result)

    def load_result(self: S, result: Result | None = None) -> S:
        """A copy whose result is read from its location when only the location is known."""
        children = getattr(self, "map_states", None)
        if children is not None:
            loaded = [c.load_result(result) if c is not None else None for c in children]
            return self.replace(map_states=list(loaded), result=[_value(c) for c in loaded])
        known = self._result
        reader = result or known
        if known.value is None and known.location is not None:
            return self.replace(result=reader.read(known.location))
        return self

    def load_cached_results(self: S, results: Mapping[str, Result | None] | None = None) -> S:
        """A copy whose `cached_inputs` Results are read from their locations."""
        readers = dict(results or {})
        loaded: dict[str, Any] = {}
        for key, res in self.cached_inputs.items():
            reader = readers.get(key) or res
            location = getattr(res, "location", None) or getattr(reader, "location", None)
            if isinstance(res, Result) and res.value is None and location is not None:
                loaded[key] = reader.read(location)
            else:
                loaded[key] = res
        return self.replace(cached_inputs=loaded)

    @classmethod
    def children(cls, include_self: bool = False, names_only: bool = False) -> list[Any]:
        found: list[Any] = []
        for sub in cls.__subclasses__():
            if not sub.__name__.startswith("_"):
                found.append(sub)
            found.extend(sub.children())
        if include_self:
            found.append(cls)
        return [s.__name__ for s in found] if names_only else found

    @classmethod
    def parents(cls, include_self: bool = False, names_only: bool = False) -> list[Any]:
        found = [
            s
            for s in cls.mro()
            if s not in (object, cls, StateResults) and not s.__name__.startswith("_")
        ]
        if include_self:
            found.append(cls)
        return [s.__name__ for s in found] if names_only else found

    def __sizeof__(self) -> int:
        return super().__sizeof__() + sys.getsizeof(self.result, 0)


def _value(state: Any) -> Any:
    return None if state is None else state.result
