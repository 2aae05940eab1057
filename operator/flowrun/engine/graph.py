"""Flow as data: the JSON-serialisable FlowGraph, and conversions to and from a Flow.

A FlowGraph names each task's callable as "package.module:function"; it is imported where
the task runs (`RefTask`), so whoever holds the graph needs none of the user's code. The
dict form (`from_dict` / `to_dict`) is the inline flow a FlowRun embeds as `spec.flow`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from flowrun.engine import cache_validators, triggers
from flowrun.engine.flow import Flow
from flowrun.engine.graph_dict import FlowGraphError, parse
from flowrun.engine.graph_model import (
    Arg,
    FlowGraph,
    Literal,
    ParameterSpec,
    Ref,
    TaskSpec,
)
from flowrun.engine.task import Collection, Constant, FunctionTask, Parameter, Task

__all__ = [
    "Arg",
    "FlowGraph",
    "FlowGraphError",
    "Literal",
    "ParameterSpec",
    "Ref",
    "RefTask",
    "TaskSpec",
    "from_dict",
    "from_flow",
    "load_flow",
    "resolve",
    "to_flow",
]


def from_dict(data: Any) -> FlowGraph:
    """The FlowGraph of an inline flow dict; FlowGraphError names the bad field's path."""
    return parse(data)


def resolve(ref: str) -> Any:
    """Import "package.module:attribute" (dots after the colon walk attributes)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{ref!r} is not of the form 'package.module:attribute'")
    found: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        found = getattr(found, part)
    return found


def load_flow(ref: str) -> Flow:
    found = resolve(ref)
    if not isinstance(found, Flow):
        raise TypeError(f"{ref!r} is a {type(found).__name__}, not a Flow")
    return found


def constant(value: Any) -> Any:
    """The callable behind a mapped literal written as a task."""
    return value


def collect_list(**items: Any) -> list[Any]:
    return [items[f"arg_{i}"] for i in range(len(items))]


def collect_tuple(**items: Any) -> tuple[Any, ...]:
    return tuple(collect_list(**items))


def collect_set(**items: Any) -> set[Any]:
    return set(collect_list(**items))


class RefTask(Task):
    """A task whose function is named, and imported on first use where it runs."""

    def __init__(self, fn: str, **task_args: Any) -> None:
        self.fn_ref = fn
        self._fn: Callable[..., Any] | None = None
        super().__init__(**task_args)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fn": None}

    def run(self, **inputs: Any) -> Any:
        return self.run_with(inputs)

    def run_with(self, inputs: Mapping[str, Any]) -> Any:
        if self._fn is None:
            found = resolve(self.fn_ref)
            # "module:name" of an @task function finds the task; run its function.
            self._fn = found.fn if isinstance(found, FunctionTask) else found
        positional = sorted((int(k[5:]), v) for k, v in inputs.items() if k.startswith("__arg"))
        named = {k: v for k, v in inputs.items() if not k.startswith("__arg")}
        return self._fn(*(v for _, v in positional), **named)


def _arg_key(index: int) -> str:
    return f"__arg{index}"


def to_flow(graph: FlowGraph) -> Flow:
    flow = Flow(graph.name)
    params: dict[str, Task] = {}
    for p in graph.parameters:
        params[p.name] = flow.add_task(Parameter(p.name, required=p.required, default=p.default))
    tasks: dict[str, Task] = {}
    for spec in graph.tasks:
        tasks[spec.name] = flow.add_task(
            RefTask(
                spec.fn,
                name=spec.name,
                slug=spec.name,
                tags=spec.tags,
                max_retries=spec.max_retries,
                retry_delay=spec.retry_delay_seconds,
                timeout=spec.timeout_seconds,
                trigger=triggers.BY_NAME[spec.trigger],
                skip_on_upstream_skip=spec.skip_on_upstream_skip,
                cache_for=spec.cache_for_seconds,
                cache_validator=None
                if spec.cache_validator is None
                else cache_validators.BY_NAME[spec.cache_validator],
            )
        )
    for spec in graph.tasks:
        task = tasks[spec.name]
        bound = {_arg_key(i): a for i, a in enumerate(spec.args)} | dict(spec.kwargs)
        for key, arg in bound.items():
            if isinstance(arg, Ref):
                source = tasks[arg.name] if arg.kind == "task" else params[arg.name]
                flow.add_edge(source, task, key=key, mapped=arg.map, flattened=arg.flatten)
            else:
                flow.constants[task][key] = arg.value
        for name in spec.upstream:
            flow.add_edge(tasks[name], task)
    if graph.reference_tasks:
        flow.set_reference_tasks(tasks[n] for n in graph.reference_tasks)
    return flow


def _by_identity(table: Mapping[str, Any], value: Any, what: str, where: str) -> str | None:
    for name, candidate in table.items():
        if candidate is value:
            return name
    raise FlowGraphError(f"{where}: this {what} has no name in the flow format")


def _fn_ref(task: Task, where: str) -> tuple[str, dict[str, Arg]]:
    if isinstance(task, RefTask):
        return task.fn_ref, {}
    if isinstance(task, FunctionTask):
        fn = task.fn
        qualname = getattr(fn, "__qualname__", "")
        if "<" in qualname:
            raise FlowGraphError(
                f"{where}: {qualname} can not be imported by name (define it at module level)"
            )
        return f"{fn.__module__}:{qualname}", {}
    if isinstance(task, Constant):
        return "flowrun.engine.graph:constant", {"value": Literal(task.value)}
    if isinstance(task, Collection) and task.kind in (list, tuple, set):
        return f"flowrun.engine.graph:collect_{task.kind.__name__}", {}
    raise FlowGraphError(
        f"{where}: a {type(task).__name__} can not be written as data; use @task functions"
    )


def from_flow(flow: Flow) -> FlowGraph:
    """The FlowGraph of a Flow built from importable @task functions."""
    params: list[ParameterSpec] = []
    specs: list[TaskSpec] = []
    for task in flow.sorted_tasks():
        slug = task.slug or ""
        where = f"tasks[{slug}]"
        if isinstance(task, Parameter):
            params.append(ParameterSpec(task.name, required=task.required, default=task.default))
            continue
        if task.state_handlers or task.retry_on:
            raise FlowGraphError(f"{where}: state handlers and retry_on can not be written as data")
        fn, extra = _fn_ref(task, where)
        args: dict[int, Arg] = {}
        kwargs: dict[str, Arg] = dict(extra)
        upstream: list[str] = []
        for edge in flow.edges_to(task):
            up = edge.upstream
            kind = "parameter" if isinstance(up, Parameter) else "task"
            ref = Ref(kind, up.slug or "", map=edge.mapped, flatten=edge.flattened)
            if edge.key is None:
                upstream.append(up.slug or "")
            elif edge.key.startswith("__arg"):
                args[int(edge.key[5:])] = ref
            else:
                kwargs[edge.key] = ref
        for key, value in flow.constants.get(task, {}).items():
            if key.startswith("__arg"):
                args[int(key[5:])] = Literal(value)
            else:
                kwargs[key] = Literal(value)
        specs.append(
            TaskSpec(
                name=slug,
                fn=fn,
                args=tuple(args[i] for i in sorted(args)),
                kwargs=kwargs,
                upstream=tuple(upstream),
                max_retries=task.max_retries,
                retry_delay_seconds=task.retry_delay.total_seconds() or None,
                timeout_seconds=task.timeout,
                trigger=_by_identity(triggers.BY_NAME, task.trigger, "trigger", where)
                or "all_successful",
                skip_on_upstream_skip=task.skip_on_upstream_skip,
                cache_for_seconds=None
                if task.cache_for is None
                else task.cache_for.total_seconds(),
                cache_validator=None
                if task.cache_for is None
                else _by_identity(
                    cache_validators.BY_NAME, task.cache_validator, "cache validator", where
                ),
                tags=tuple(sorted(task.tags)),
            )
        )
    reference = (
        tuple(sorted(t.slug or "" for t in flow.reference_tasks()))
        if flow._reference is not None
        else ()
    )
    return FlowGraph(
        name=flow.name, parameters=tuple(params), tasks=tuple(specs), reference_tasks=reference
    )


def graph_fields() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(TaskSpec))
