"""`flatten(...)` semantics, as Prefect 1.x's.

A plain upstream result is unnested one level; when it cannot be (its items are not
iterable), it passes unchanged. A mapped upstream's children are flattened child by child:
a child that did not succeed (failed, skipped) stays one element, as its state, so only
the matching downstream child is affected; a child whose result cannot be indexed stays
one element too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowrun.engine import state as states


def flatten_result(value: Any) -> Any:
    """One level of nesting removed: [[1, 2], [3]] -> [1, 2, 3]; unchanged if not nested."""
    try:
        return [item for inner in value for item in inner]
    except TypeError:
        return value


def _splittable(child: states.State) -> bool:
    return (
        child.is_successful()
        and not child.is_skipped()
        and hasattr(child.result, "__len__")
        and hasattr(child.result, "__getitem__")
    )


def flatten_children(children: Iterable[states.State]) -> list[states.State]:
    """The element states of mapped children, flattened one level (see the module doc)."""
    out: list[states.State] = []
    for child in children:
        if _splittable(child):
            out.extend(child.replace(result=item) for item in child.result)
        else:
            out.append(child)
    return out


def passes_unflattened(children: Iterable[states.State]) -> bool:
    """Whether a successful child's result can not be flattened (it passes unchanged)."""
    return any(c.is_successful() and not c.is_skipped() and not _splittable(c) for c in children)


def mapped_edge_states(upstream: Any) -> list[states.State]:
    """What a task's upstream checks look at: a reduce edge sees every child of a Mapped
    upstream; a mapped edge sees the Mapped parent (each child decides for itself)."""
    seen: list[states.State] = []
    for edge, up in upstream.items():
        if isinstance(up, states.Mapped) and not getattr(edge, "mapped", False):
            seen.extend(up.map_states)
        else:
            seen.append(up)
    return seen
