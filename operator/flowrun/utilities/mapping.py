"""`apply_map`: map a function that builds tasks (with `case`, `merge`, ...) element-wise.

As Prefect 1.x's `prefect.utilities.tasks.apply_map`: `func` is called once, on the
arguments as tasks, inside a scratch flow; its tasks and edges are then copied into the
flow with every edge mapped (except from `unmapped(...)` arguments), so each element
runs the whole subgraph. Each task `func` made without an upstream among its own tasks
also gets every mapped argument upstream, so all of them map over the same elements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flowrun.engine import flow_context
from flowrun.engine.context import context
from flowrun.engine.edges import Annotated
from flowrun.engine.flow import Flow
from flowrun.engine.task import Constant, Task, as_task

# Per argument task: (mapped, constant, flattened).
ArgInfo = dict[Task, tuple[bool, bool, bool]]


def apply_map(func: Callable[..., Any], *args: Any, flow: Flow | None = None, **kwargs: Any) -> Any:
    """Call `func` on the arguments as if on each element; returns what `func` returns.

    Give `flow=` to build into that flow (then `func` takes a `flow` keyword too);
    otherwise the active `with Flow(...)` block's flow is used."""
    target: Flow | None = flow or flow_context.current_flow()
    if target is None:
        raise ValueError("Couldn't infer a flow in the current context")
    for value in (*args, *kwargs.values()):
        if not isinstance(value, Task | Annotated | Sequence):
            raise TypeError(f"Cannot map over non-sequence object of type `{type(value).__name__}`")
    before = set(target.tasks)
    scratch = Flow("temporary flow")
    info: ArgInfo = {}
    given = [_prepare(a, target, scratch, info) for a in args]
    named = {k: _prepare(v, target, scratch, info) for k, v in kwargs.items()}
    # Outer `case` blocks do not reach the scratch flow; `mapped` refuses a map inside.
    with context(mapped=True, case=None), scratch:
        result = func(*given, **named) if flow is None else func(*given, flow=scratch, **named)
    _copy_into(target, scratch, info)
    _share_arguments(target, set(scratch.tasks) - before - set(info), info)
    return result


def _prepare(value: Any, target: Flow, scratch: Flow, info: ArgInfo) -> Any:
    """The argument as `func` gets it: a task in both flows, or an unmapped constant's
    value (which then becomes a constant of the tasks it is given to)."""
    mapped = not (isinstance(value, Annotated) and value.mapped is False)
    flattened = isinstance(value, Annotated) and value.flattened
    inner = value.value if isinstance(value, Annotated) else value
    with context(case=None):
        made = as_task(inner, scratch)
    constant = isinstance(made, Constant)
    info[made] = (mapped, constant, flattened)
    if isinstance(made, Constant) and not mapped:
        return made.value
    with context(case=None):
        scratch.add_task(made)
        target.add_task(made)
    return made


def _copy_into(target: Flow, scratch: Flow, info: ArgInfo) -> None:
    for task in scratch.tasks:
        target.add_task(task)
    for edge in scratch.edges:
        mapped, _, flattened = info.get(edge.upstream_task, (True, False, False))
        target.add_edge(
            edge.upstream_task,
            edge.downstream_task,
            key=edge.key,
            mapped=mapped,
            flattened=flattened,
        )
    for task, values in scratch.constants.items():
        target.constants[task].update(values)


def _share_arguments(target: Flow, new: set[Task], info: ArgInfo) -> None:
    for task in new:
        upstream = target.upstream_tasks(task)
        if upstream & new:
            continue
        for arg, (mapped, constant, flattened) in info.items():
            if arg not in upstream and (mapped or not constant):
                target.add_edge(arg, task, mapped=mapped, flattened=flattened)
