"""The FlowGraph value types and their dict (camelCase) form."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Literal:
    value: Any


@dataclasses.dataclass(frozen=True)
class Ref:
    kind: str  # "task" or "parameter"
    name: str
    map: bool = False
    flatten: bool = False


Arg = Literal | Ref


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    name: str
    required: bool = False
    default: Any = None


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    fn: str
    args: tuple[Arg, ...] = ()
    kwargs: Mapping[str, Arg] = dataclasses.field(default_factory=dict)
    upstream: tuple[str, ...] = ()
    max_retries: int = 0
    retry_delay_seconds: float | None = None
    timeout_seconds: float | None = None
    trigger: str = "all_successful"
    skip_on_upstream_skip: bool = True
    cache_for_seconds: float | None = None
    cache_validator: str | None = None
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FlowGraph:
    name: str = "flow"
    parameters: tuple[ParameterSpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    reference_tasks: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The inline flow dict (camelCase, defaults left out)."""
        out: dict[str, Any] = {"name": self.name}
        if self.parameters:
            out["parameters"] = [_param_dict(p) for p in self.parameters]
        if self.reference_tasks:
            out["referenceTasks"] = list(self.reference_tasks)
        out["tasks"] = [_task_dict(t) for t in self.tasks]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> FlowGraph:
        from flowrun.engine.graph_dict import parse  # noqa: PLC0415 - it imports this module

        return parse(data)


def _param_dict(p: ParameterSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name}
    if p.required:
        out["required"] = True
    else:
        out["default"] = p.default
    return out


def arg_dict(arg: Arg) -> Any:
    if isinstance(arg, Ref):
        out: dict[str, Any] = {arg.kind: arg.name}
        if arg.map:
            out["map"] = True
        if arg.flatten:
            out["flatten"] = True
        return out
    if isinstance(arg.value, dict):
        return {"value": arg.value}
    return arg.value


_OPTIONS = (
    ("max_retries", "maxRetries", 0),
    ("retry_delay_seconds", "retryDelaySeconds", None),
    ("timeout_seconds", "timeoutSeconds", None),
    ("trigger", "trigger", "all_successful"),
    ("skip_on_upstream_skip", "skipOnUpstreamSkip", True),
    ("cache_for_seconds", "cacheForSeconds", None),
    ("cache_validator", "cacheValidator", None),
)


def _task_dict(t: TaskSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "fn": t.fn}
    if t.args:
        out["args"] = [arg_dict(a) for a in t.args]
    if t.kwargs:
        out["kwargs"] = {k: arg_dict(a) for k, a in t.kwargs.items()}
    if t.upstream:
        out["upstream"] = list(t.upstream)
    for attr, key, default in _OPTIONS:
        value = getattr(t, attr)
        if value != default:
            out[key] = value
    if t.tags:
        out["tags"] = list(t.tags)
    return out
