"""The mapping from task to state that a flow state's `result` holds.

Keyed by task slug (plain data, what the operator writes to status); a Task object works
as a key too, so Prefect-style `flow_state.result[task]` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flowrun.engine import state as states


def slug_of(key: Any) -> str:
    slug = getattr(key, "slug", key)
    if not isinstance(slug, str):
        raise KeyError(key)
    return slug


class TaskStates(Mapping[str, states.State]):
    __slots__ = ("_data",)

    def __init__(self, data: Mapping[Any, states.State] | None = None) -> None:
        self._data: dict[str, states.State] = {slug_of(k): v for k, v in (data or {}).items()}

    def __getitem__(self, key: Any) -> states.State:
        return self._data[slug_of(key)]

    def __contains__(self, key: object) -> bool:
        try:
            return slug_of(key) in self._data
        except KeyError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"TaskStates({self._data!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]


class TaskStateDict(dict[Any, states.State]):
    """`{task: state}`, as Prefect's `flow_state.result`; a slug string works as a key too."""

    def __init__(self, data: Mapping[Any, states.State] | None = None) -> None:
        super().__init__(data or {})
        self._by_slug = {slug_of(k): k for k in self}

    @classmethod
    def from_slugs(cls, flow: Any, by_slug: Mapping[str, states.State]) -> TaskStateDict:
        return cls({flow.task_by_slug(s): st for s, st in by_slug.items()})

    def _key(self, key: Any) -> Any:
        return self._by_slug.get(key, key) if isinstance(key, str) else key

    def __getitem__(self, key: Any) -> states.State:
        return super().__getitem__(self._key(key))

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self._key(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(self._key(key), default)

    def __setitem__(self, key: Any, value: states.State) -> None:
        super().__setitem__(key, value)
        if not isinstance(key, str):
            self._by_slug[slug_of(key)] = key
