"""Flow as data: the JSON-serialisable FlowGraph, and conversions to and from a Flow.

A FlowGraph names each task's callable as "package.module:function"; it is imported where
the task runs (`RefTask`), so whoever holds the graph needs none of the user's code. The
dict form (`from_dict` / `to_dict`) is the inline flow a FlowRun embeds as `spec.flow`.
"""

from __future__ import annotations

from typing import Any

from flowrun.engine.flow import Flow
from flowrun.engine.graph_build import build as _build
from flowrun.engine.graph_build import from_flow
from flowrun.engine.graph_model import (
    Arg,
    FlowGraph,
    FlowGraphError,
    Literal,
    ParameterSpec,
    Ref,
    TaskSpec,
    parse,
)

# Graphs written before these moved to `refs` name them here: keep those names working.
from flowrun.engine.refs import (
    RefTask,
    collect_list,
    collect_set,
    collect_tuple,
    constant,
    resolve,
)

__all__ = [
    "Arg",
    "FlowGraph",
    "FlowGraphError",
    "Literal",
    "ParameterSpec",
    "Ref",
    "RefTask",
    "TaskSpec",
    "collect_list",
    "collect_set",
    "collect_tuple",
    "constant",
    "from_dict",
    "from_flow",
    "load_flow",
    "resolve",
    "to_flow",
]


def from_dict(data: Any) -> FlowGraph:
    """The FlowGraph of an inline flow dict; FlowGraphError names the bad field's path."""
    return parse(data)


def to_flow(graph: FlowGraph) -> Flow:
    return _build(graph, Flow)


def load_flow(ref: str) -> Flow:
    found = resolve(ref)
    if not isinstance(found, Flow):
        raise TypeError(f"{ref!r} is a {type(found).__name__}, not a Flow")
    return found
