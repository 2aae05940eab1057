"""The FlowGraph value types and their dict (camelCase) form, both ways.

Parsing names the bad field's path in its error:

>>> parse({"tasks": [{"name": "a", "fn": "m:f", "kwargs": {"x": {"task": "b"}}}]})
Traceback (most recent call last):
...
flowrun.engine.graph_model.FlowGraphError: tasks[0].kwargs.x: unknown task 'b'
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from flowrun.engine import cache_validators, triggers


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
    map_batch_size: int | None = None  # mapped children per Dask task (None: adaptive)


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
    ("map_batch_size", "mapBatchSize", None),
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


# -- parsing the dict form ------------------------------------------------------------------
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# The one spelling of a task's `fn`, ASCII so that Python and the API server's RE2 agree (the
# FlowRun CRD's schema takes it from here, through flowrun.api.models).
FN_REGEX = rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*$"
FN_PATTERN = re.compile(FN_REGEX)
FLOW_KEYS = {"name", "parameters", "referenceTasks", "tasks"}
PARAM_KEYS = {"name", "required", "default"}
TASK_KEYS = {
    "name", "fn", "args", "kwargs", "upstream", "maxRetries", "retryDelaySeconds", "timeoutSeconds",
    "trigger", "skipOnUpstreamSkip", "cacheForSeconds", "cacheValidator", "tags", "mapBatchSize",
}  # fmt: skip


class FlowGraphError(ValueError):
    """An inline flow dict is wrong; the message starts with the path of the bad field."""


def _fail(path: str, message: str) -> FlowGraphError:
    return FlowGraphError(f"{path}: {message}" if path else message)


def _mapping(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise _fail(f"{path}.{key}" if path else str(key), "unknown field")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _fail(path, f"must be a list, got {type(value).__name__}")
    return list(value)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, "must be a non-empty string")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "must be true or false")
    return value


def _number(value: Any, path: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, "must be a number")
    if value < 0 or (positive and value == 0):
        raise _fail(path, "must be greater than 0" if positive else "must not be negative")
    return float(value)


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(path, "must be a non-negative integer")
    return value


def _batch_size(value: Any, path: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise _fail(path, "must be a positive integer (mapped children per Dask task); leave it "
                    "out for a size that adapts to the map and the cluster")  # fmt: skip
    return value


def _arg(value: Any, path: str, tasks: set[str], params: set[str]) -> Arg:
    if not isinstance(value, Mapping) or not ({"task", "parameter", "value"} & set(value)):
        return Literal(value)
    if "value" in value:
        _mapping(value, path, {"value"})
        return Literal(value["value"])
    kind = "task" if "task" in value else "parameter"
    _mapping(value, path, {kind, "map", "flatten"})
    name = _str(value[kind], f"{path}.{kind}")
    known = tasks if kind == "task" else params
    if name not in known:
        raise _fail(path, f"unknown {kind} {name!r}")
    return Ref(
        kind,
        name,
        map=_bool(value.get("map", False), f"{path}.map"),
        flatten=_bool(value.get("flatten", False), f"{path}.flatten"),
    )


def _parameter(value: Any, path: str) -> ParameterSpec:
    body = _mapping(value, path, PARAM_KEYS)
    if "name" not in body:
        raise _fail(f"{path}.name", "is required")
    required = _bool(body.get("required", "default" not in body), f"{path}.required")
    return ParameterSpec(
        _str(body["name"], f"{path}.name"), required=required, default=body.get("default")
    )


def _trigger_and_validator(body: Mapping[str, Any], path: str) -> tuple[str, str | None]:
    trigger = _str(body.get("trigger", "all_successful"), f"{path}.trigger")
    if trigger not in triggers.BY_NAME:
        raise _fail(
            f"{path}.trigger",
            f"unknown trigger {trigger!r} (one of {', '.join(sorted(triggers.BY_NAME))})",
        )
    validator = body.get("cacheValidator")
    if validator is not None and validator not in cache_validators.BY_NAME:
        choices = ", ".join(sorted(cache_validators.BY_NAME))
        raise _fail(
            f"{path}.cacheValidator", f"unknown cache validator {validator!r} (one of {choices})"
        )
    return trigger, validator


def _task(value: Any, path: str, tasks: set[str], params: set[str]) -> TaskSpec:
    body = _mapping(value, path, TASK_KEYS)
    for required in ("name", "fn"):
        if required not in body:
            raise _fail(f"{path}.{required}", "is required")
    fn = _str(body["fn"], f"{path}.fn")
    if not FN_PATTERN.match(fn):
        raise _fail(f"{path}.fn", f"{fn!r} is not of the form 'package.module:function'")
    args = tuple(
        _arg(a, f"{path}.args[{i}]", tasks, params)
        for i, a in enumerate(_list(body.get("args", []), f"{path}.args"))
    )
    raw_kwargs = body.get("kwargs", {})
    if not isinstance(raw_kwargs, Mapping):
        raise _fail(f"{path}.kwargs", "must be a mapping")
    kwargs = {
        _str(k, f"{path}.kwargs"): _arg(v, f"{path}.kwargs.{k}", tasks, params)
        for k, v in raw_kwargs.items()
    }
    upstream = []
    for i, name in enumerate(_list(body.get("upstream", []), f"{path}.upstream")):
        if _str(name, f"{path}.upstream[{i}]") not in tasks:
            raise _fail(f"{path}.upstream[{i}]", f"unknown task {name!r}")
        upstream.append(name)
    trigger, validator = _trigger_and_validator(body, path)
    tags = tuple(
        _str(t, f"{path}.tags[{i}]")
        for i, t in enumerate(_list(body.get("tags", []), f"{path}.tags"))
    )

    def optional(key: str, *, positive: bool = False) -> float | None:
        return (
            None
            if body.get(key) is None
            else _number(body[key], f"{path}.{key}", positive=positive)
        )

    return TaskSpec(
        name=body["name"],
        fn=fn,
        args=args,
        kwargs=kwargs,
        upstream=tuple(upstream),
        max_retries=_int(body.get("maxRetries", 0), f"{path}.maxRetries"),
        retry_delay_seconds=optional("retryDelaySeconds"),
        timeout_seconds=optional("timeoutSeconds", positive=True),
        trigger=trigger,
        skip_on_upstream_skip=_bool(
            body.get("skipOnUpstreamSkip", True), f"{path}.skipOnUpstreamSkip"
        ),
        cache_for_seconds=optional("cacheForSeconds", positive=True),
        cache_validator=validator,
        tags=tags,
        map_batch_size=_batch_size(body.get("mapBatchSize"), f"{path}.mapBatchSize"),
    )


def parse(data: Any) -> FlowGraph:
    body = _mapping(data, "", FLOW_KEYS)
    name = _str(body.get("name", "flow"), "name")
    params = [
        _parameter(p, f"parameters[{i}]")
        for i, p in enumerate(_list(body.get("parameters", []), "parameters"))
    ]
    param_names: set[str] = set()
    for i, p in enumerate(params):
        if p.name in param_names:
            raise _fail(f"parameters[{i}].name", f"duplicate parameter {p.name!r}")
        param_names.add(p.name)
    raw_tasks = _list(body.get("tasks", []), "tasks")
    task_names: set[str] = set()
    for i, raw in enumerate(raw_tasks):
        task_name = _str(_mapping(raw, f"tasks[{i}]", TASK_KEYS).get("name"), f"tasks[{i}].name")
        if task_name in task_names or task_name in param_names:
            raise _fail(f"tasks[{i}].name", f"duplicate name {task_name!r}")
        task_names.add(task_name)
    specs = tuple(
        _task(raw, f"tasks[{i}]", task_names, param_names) for i, raw in enumerate(raw_tasks)
    )
    reference = []
    for i, ref in enumerate(_list(body.get("referenceTasks", []), "referenceTasks")):
        if _str(ref, f"referenceTasks[{i}]") not in task_names:
            raise _fail(f"referenceTasks[{i}]", f"unknown task {ref!r}")
        reference.append(ref)
    _check_acyclic(specs)
    return FlowGraph(
        name=name, parameters=tuple(params), tasks=specs, reference_tasks=tuple(reference)
    )


def _check_acyclic(specs: tuple[TaskSpec, ...]) -> None:
    ups: dict[str, set[str]] = {s.name: set(s.upstream) for s in specs}
    for s in specs:
        for a in (*s.args, *s.kwargs.values()):
            if isinstance(a, Ref) and a.kind == "task":
                ups[s.name].add(a.name)
    indegree = {n: len(u) for n, u in ups.items()}
    down: dict[str, list[str]] = {n: [] for n in ups}
    for n, u in ups.items():
        for m in u:
            down[m].append(n)
    ready = [n for n, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for m in down[n]:
            indegree[m] -= 1
            if indegree[m] == 0:
                ready.append(m)
    if seen != len(ups):
        stuck = sorted(n for n, d in indegree.items() if d > 0)
        raise _fail("tasks", f"the tasks form a cycle (involving {', '.join(stuck)})")
