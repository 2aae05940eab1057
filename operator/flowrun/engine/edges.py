"""Edges between tasks and the `unmapped` / `mapped` / `flatten` argument annotations."""

from __future__ import annotations

import dataclasses
import keyword
from typing import Any, Generic, TypeVar

# The node type: a Task (generic so that this module need not import tasks, which use it).
T = TypeVar("T")


class Edge(Generic[T]):
    """`upstream_task` feeds `downstream_task`: as argument `key` (None: ordering only).

    Equal edges (same tasks, key and options) are one edge; `upstream` and `downstream`
    are short names for the two tasks.
    """

    __slots__ = ("downstream_task", "flattened", "key", "mapped", "upstream_task")

    def __init__(
        self,
        upstream_task: T,
        downstream_task: T,
        key: str | None = None,
        mapped: bool | None = None,
        flattened: bool | None = None,
    ) -> None:
        # `mapped(t)` / `unmapped(t)` / `flatten(t)` around either end win over the arguments.
        noted_mapped, noted_flat = None, False
        if isinstance(upstream_task, Annotated):
            noted_mapped, noted_flat = upstream_task.mapped, upstream_task.flattened
            upstream_task = upstream_task.value
        if isinstance(downstream_task, Annotated):
            noted_mapped = (
                noted_mapped if downstream_task.mapped is None else downstream_task.mapped
            )
            noted_flat = noted_flat or downstream_task.flattened
            downstream_task = downstream_task.value
        if upstream_task is downstream_task:
            raise ValueError("Edges can not connect a task to itself.")
        if key is not None and not (
            isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)
        ):
            raise ValueError(f'Key must be a valid identifier (received "{key}")')
        self.upstream_task = upstream_task
        self.downstream_task = downstream_task
        self.key = key
        self.mapped = bool(mapped) if noted_mapped is None else noted_mapped
        self.flattened = noted_flat or bool(flattened)

    @property
    def tasks(self) -> set[T]:
        return {self.upstream_task, self.downstream_task}

    @property
    def upstream(self) -> T:
        return self.upstream_task

    @property
    def downstream(self) -> T:
        return self.downstream_task

    def _identity(self) -> tuple[Any, ...]:
        return (self.upstream_task, self.downstream_task, self.key, self.mapped, self.flattened)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Edge) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((id(self.upstream_task), id(self.downstream_task), self.key))

    def __repr__(self) -> str:
        key = f"(key={self.key})" if self.key else ""
        up, down = (getattr(t, "name", t) for t in (self.upstream_task, self.downstream_task))
        return f"<Edge{key}: {up} to {down}>"


@dataclasses.dataclass(frozen=True)
class EdgeRef:
    """What a TaskRunner needs to know about one incoming edge: plain, cheap to pickle."""

    upstream: str
    key: str | None = None
    mapped: bool = False
    flattened: bool = False


@dataclasses.dataclass(frozen=True)
class Annotated:
    """An argument with edge options; `mapped=None` means "as the call decides"."""

    value: Any
    mapped: bool | None = None
    flattened: bool = False


def _annotate(value: Any, *, mapped: bool | None = None, flattened: bool = False) -> Annotated:
    if isinstance(value, Annotated):
        return Annotated(
            value.value,
            mapped=value.mapped if mapped is None else mapped,
            flattened=value.flattened or flattened,
        )
    return Annotated(value, mapped=mapped, flattened=flattened)


def unmapped(value: Any) -> Annotated:
    """Pass `value` whole to every child of a `.map()`."""
    return _annotate(value, mapped=False)


def mapped(value: Any) -> Annotated:
    """Map over `value` in an ordinary call."""
    return _annotate(value, mapped=True)


def flatten(value: Any) -> Annotated:
    """Flatten one level of nesting of `value` (or of a mapped task's children) first."""
    return _annotate(value, flattened=True)
