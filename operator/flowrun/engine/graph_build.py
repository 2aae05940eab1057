"""Conversions between a Flow and its data form, the FlowGraph.

`build` makes a flow of a given class so that the runners (below `flow.Flow`) can run a
FlowGraph as a `FlowBase`, while `graph.to_flow` gives users a full `Flow`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from flowrun.engine import cache_validators, triggers
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.graph_model import (
    Arg,
    FlowGraph,
    FlowGraphError,
    Literal,
    ParameterSpec,
    Ref,
    TaskSpec,
)
from flowrun.engine.parameter import Parameter
from flowrun.engine.refs import RefTask
from flowrun.engine.task import Collection, Constant, FunctionTask, Task

F = TypeVar("F", bound=FlowBase)


def _arg_key(index: int) -> str:
    return f"__arg{index}"


def build(graph: FlowGraph, cls: type[F]) -> F:
    """A flow of class `cls` (FlowBase or Flow) with the graph's tasks, as RefTasks."""
    flow = cls(graph.name)
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
                # A FlowRun's delay without retries has no effect (as before Task refused
                # that pairing, as Prefect does): the spec stays valid.
                retry_delay=spec.retry_delay_seconds if spec.max_retries else None,
                timeout=spec.timeout_seconds,
                trigger=triggers.BY_NAME[spec.trigger],
                skip_on_upstream_skip=spec.skip_on_upstream_skip,
                cache_for=spec.cache_for_seconds,
                cache_validator=None
                if spec.cache_validator is None
                else cache_validators.BY_NAME[spec.cache_validator],
                map_batch_size=spec.map_batch_size,
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
        return "flowrun.engine.refs:constant", {"value": Literal(task.value)}
    if isinstance(task, Collection) and task.kind in (list, tuple, set):
        return f"flowrun.engine.refs:collect_{task.kind.__name__}", {}
    raise FlowGraphError(
        f"{where}: a {type(task).__name__} can not be written as data; use @task functions"
    )


def from_flow(flow: FlowBase) -> FlowGraph:
    """The FlowGraph of a Flow built from importable @task functions."""
    params: list[ParameterSpec] = []
    specs: list[TaskSpec] = []
    for task in flow.sorted_tasks():
        if isinstance(task, Parameter):
            params.append(ParameterSpec(task.name, required=task.required, default=task.default))
        else:
            specs.append(_task_spec(flow, task))
    reference = (
        tuple(sorted(t.slug or "" for t in flow.reference_tasks()))
        if flow._reference is not None
        else ()
    )
    return FlowGraph(
        name=flow.name, parameters=tuple(params), tasks=tuple(specs), reference_tasks=reference
    )


def _task_spec(flow: FlowBase, task: Task) -> TaskSpec:
    slug = task.slug or ""
    where = f"tasks[{slug}]"
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
    cached = task.cache_for is not None
    return TaskSpec(
        name=slug,
        fn=fn,
        args=tuple(args[i] for i in sorted(args)),
        kwargs=kwargs,
        upstream=tuple(upstream),
        max_retries=task.max_retries,
        retry_delay_seconds=task.retry_delay.total_seconds() or None,
        timeout_seconds=task.timeout,
        trigger=_by_identity(triggers.BY_NAME, task.trigger, "trigger", where) or "all_successful",
        skip_on_upstream_skip=task.skip_on_upstream_skip,
        cache_for_seconds=task.cache_for.total_seconds() if task.cache_for is not None else None,
        cache_validator=_by_identity(
            cache_validators.BY_NAME, task.cache_validator, "cache validator", where
        )
        if cached
        else None,
        tags=tuple(sorted(task.tags)),
        map_batch_size=task.map_batch_size,
    )
