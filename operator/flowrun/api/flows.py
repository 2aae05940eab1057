"""From a FlowRun spec to what the engine runs: the flow, its names, the given task states.

`flow_dict` is the engine's inline-flow dict for `spec.flow` (what the controller ships to the
cluster). `resolve` builds the engine `Flow` (importing `flow.ref` — so only where the flow's
code may run: `flowrun run`, or a worker) and checks the spec's names against it, raising
`SpecError` with field paths. `given_states` turns `spec.taskStates` into engine states.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowrun.api import models, validation
from flowrun.api.validation import DeclaredParameter, SpecError
from flowrun.engine import graph
from flowrun.engine import state as states
from flowrun.engine.flow import Flow
from flowrun.engine.parameter import Parameter


@dataclass(frozen=True)
class ResolvedFlow:
    flow: Flow
    tasks: tuple[str, ...]  # every task's slug (parameters included), in topological order
    parameters: tuple[DeclaredParameter, ...]


def flow_dict(spec: models.FlowRunSpec) -> dict[str, Any]:
    """`spec.flow` as the engine's inline-flow dict (camelCase, nothing unset or null).

    A parameter's `required` is spelled out, since "no default" and "default: null" differ.
    """
    out = spec.flow.model_dump(by_alias=True, exclude_none=True, mode="json")
    if spec.flow.parameters is not None:
        out["parameters"] = [
            {
                "name": p.name,
                "required": p.is_required(),
                **({"default": p.default} if "default" in p.model_fields_set else {}),
            }
            for p in spec.flow.parameters
        ]
    return out


# What importing a `package.module:attribute` reference raises when it does not name a Flow.
LOAD_ERRORS = (ImportError, AttributeError, TypeError, ValueError)


def unresolvable(ref: str, err: BaseException) -> SpecError:
    """The user's error for a `flow.ref` that cannot be loaded where it was tried."""
    return SpecError(
        [
            f"spec.flow.ref: cannot load {ref!r}: {type(err).__name__}: {err} "
            "(the module must be importable in the worker image, spec.executor.dask.image)"
        ],
        reason="UnresolvableFlow",
    )


def _load_ref(ref: str) -> Flow:
    try:
        return graph.load_flow(ref)
    except LOAD_ERRORS as err:
        raise unresolvable(ref, err) from None


def _reference(flow: Flow, names: list[str] | None) -> Flow:
    """A copy of a referenced flow with other reference tasks (the module's flow is untouched)."""
    if not names:
        return flow
    try:
        data = graph.from_flow(flow)
    except graph.FlowGraphError as err:
        message = f"spec.flow.referenceTasks: this flow cannot be copied to change them: {err}"
        raise SpecError([message]) from None
    copy = graph.FlowGraph(
        name=data.name,
        parameters=data.parameters,
        tasks=data.tasks,
        reference_tasks=tuple(names),
    )
    return graph.to_flow(copy)


def inline_graph(flow: Mapping[str, Any]) -> graph.FlowGraph:
    """The graph of an inline `spec.flow` (its dict form); SpecError names the field under
    `spec.flow` (the engine names it within the flow)."""
    try:
        return graph.from_dict(flow)
    except graph.FlowGraphError as err:
        raise SpecError([f"spec.flow.{err}"]) from None


def resolve(spec: models.FlowRunSpec) -> ResolvedFlow:
    """The engine flow for `spec.flow`, with every name in the spec checked against it."""
    if spec.flow.ref is not None:
        flow = _load_ref(spec.flow.ref)
    else:
        flow = graph.to_flow(inline_graph(flow_dict(spec)))
    tasks = tuple(t.slug or t.name for t in flow.sorted_tasks())
    declared = tuple(
        DeclaredParameter(t.name, t.required)
        for t in flow.sorted_tasks()
        if isinstance(t, Parameter)
    )
    params = {p.name for p in declared}
    if spec.flow.ref is not None:
        spec = slugs_for_names(spec, tasks)
    validation.check_spec(
        spec, tasks=[name for name in tasks if name not in params], parameters=declared
    )
    if spec.flow.ref is not None:
        flow = _reference(flow, spec.flow.reference_tasks)
    return ResolvedFlow(flow=flow, tasks=tasks, parameters=declared)


_AUTO_SLUG = re.compile(r"^(?P<name>.+)-[0-9]+$")


def slugs_for_names(spec: models.FlowRunSpec, slugs: Sequence[str]) -> models.FlowRunSpec:
    """`spec` with task names written as slugs where the name is unique in the flow.

    A `flow.ref` flow's tasks are keyed by slug, and the engine slugs a task `NAME-N`: users
    write `returnTasks: [total]` for the one task named `total` (slug `total-1`). A name that
    is a slug already, or that several tasks share, is left as written (check_spec then lists
    the slugs).

    >>> spec = models.FlowRunSpec.model_validate({"flow": {"ref": "m:f"}, "returnTasks": ["total"]})
    >>> slugs_for_names(spec, ["total-1", "x-1", "x-2"]).return_tasks
    ['total-1']
    """
    known = set(slugs)
    owners: dict[str, list[str]] = {}
    for slug in slugs:
        if match := _AUTO_SLUG.match(slug):
            owners.setdefault(match["name"], []).append(slug)

    def slug_of(name: str) -> str:
        found = owners.get(name, [])
        return found[0] if name not in known and len(found) == 1 else name

    def each(names: Sequence[str] | None) -> list[str] | None:
        return None if names is None else [slug_of(n) for n in names]

    given = spec.task_states
    return spec.model_copy(
        update={
            "start_tasks": each(spec.start_tasks),
            "return_tasks": each(spec.return_tasks),
            "task_states": None if given is None else {slug_of(k): v for k, v in given.items()},
            "flow": spec.flow.model_copy(
                update={"reference_tasks": each(spec.flow.reference_tasks)}
            ),
        }
    )


def given_states(spec: models.FlowRunSpec) -> dict[str, states.State]:
    """`spec.taskStates` as engine states (finished ones: those tasks do not run again)."""
    out: dict[str, states.State] = {}
    for name, given in (spec.task_states or {}).items():
        cls = states.BY_NAME[given.state.value]
        out[name] = cls(message=given.message, result=given.result)
    return out


def results_of(final: Mapping[str, states.State], names: list[str]) -> dict[str, Any]:
    """The results of the successful return tasks (failed ones have no result to show)."""
    return {n: final[n].result for n in names if n in final and final[n].is_successful()}
