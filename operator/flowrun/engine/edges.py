"""Edges between tasks and the `unmapped` / `mapped` / `flatten` argument annotations."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowrun.engine.task import Task


@dataclasses.dataclass(frozen=True)
class Edge:
    """`upstream` feeds `downstream`: as argument `key` (None: ordering only)."""

    upstream: Task
    downstream: Task
    key: str | None = None
    mapped: bool = False
    flattened: bool = False


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
