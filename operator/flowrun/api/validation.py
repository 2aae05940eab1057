"""Manifest checks the API server cannot do, with messages that name the field.

The CRD refuses bad shapes at apply time; what is left needs the flow: unknown task names in
`startTasks`, `returnTasks`, `taskStates`, `referenceTasks` or `upstream`, parameters the flow
does not declare, required ones missing. Both the controller (which turns a `SpecError` into a
Failed phase and an Event) and `flowrun run` (exit 2) call these, so a user reads the same
message in both places:

    spec.startTasks[0]: unknown task 'x'; known tasks: a, b

Checks collect every problem instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from flowrun.api import models

MAX_LISTED = 10
# A spec whose JSON values (task arguments, parameter values, given results) nest deeper than
# this many levels (counted from `spec`) is refused before anything recurses into it: pydantic,
# the engine and Dask walk values recursively, and the API server stores 10,000 levels.
MAX_NESTING = 100


class SpecError(ValueError):
    """A FlowRun that cannot run. `problems` are lines of `field: what is wrong`."""

    def __init__(self, problems: Sequence[str], *, reason: str = "InvalidSpec") -> None:
        self.problems = tuple(problems)
        self.reason = reason
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class DeclaredParameter:
    name: str
    required: bool = False


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"int", "str"} or "[" in part:
            continue  # union member tags (`int | str` quantities), not fields
        else:
            out += f".{part}" if out else part
    return out


def format_validation_error(err: pydantic.ValidationError, prefix: str) -> list[str]:
    """`spec.executor.type: Input should be 'Local', 'Synchronous' or 'Dask'` per error."""
    lines = []
    for e in err.errors():
        where = _path((prefix, *e["loc"])) if prefix else _path(e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return lines


def nesting_problems(value: object, where: str, *, limit: int = MAX_NESTING) -> list[str]:
    """`where...: nested deeper than N levels` for the first too-deep value, without recursion.

    The path names the field and its first levels only (a path 100 levels long helps nobody).

    >>> nesting_problems({"a": [[1]]}, "spec", limit=2)
    ['spec.a[0]: nested deeper than 2 levels; pass large structures by reference (a path or URL)']
    """
    stack: list[tuple[object, str, int]] = [(value, where, 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, Mapping):
            children: Iterable[tuple[object, str]] = ((v, f".{k}") for k, v in node.items())
        elif isinstance(node, list):
            children = ((v, f"[{i}]") for i, v in enumerate(node))
        else:
            continue
        if depth >= limit:
            return [
                f"{path}: nested deeper than {limit} levels; "
                "pass large structures by reference (a path or URL)"
            ]
        shown = depth < _SHOWN_LEVELS
        stack.extend(
            (child, path + step if shown else path.removesuffix("...") + "...", depth + 1)
            for child, step in children
        )
    return []


_SHOWN_LEVELS = 8


def parse_spec(raw: Mapping[str, Any]) -> models.FlowRunSpec:
    """Validate a `spec` mapping (shape and inline-flow names); raise `SpecError`."""
    if problems := nesting_problems(raw, "spec"):
        raise SpecError(problems)
    try:
        spec = models.FlowRunSpec.model_validate(raw)
    except pydantic.ValidationError as err:
        raise SpecError(format_validation_error(err, "spec")) from None
    if spec.flow.tasks is not None:
        check_spec(spec, tasks=[t.name for t in spec.flow.tasks], parameters=None)
    return spec


def parse_flowrun(raw: object) -> models.FlowRun:
    """Validate a whole manifest (apiVersion, kind, spec); raise `SpecError`."""
    if not isinstance(raw, Mapping):
        raise SpecError([f"manifest: expected a FlowRun mapping, got {type(raw).__name__}"])
    if problems := nesting_problems(raw.get("spec"), "spec"):
        raise SpecError(problems)
    try:
        run = models.FlowRun.model_validate(raw)
    except pydantic.ValidationError as err:
        raise SpecError(format_validation_error(err, "")) from None
    if run.spec.flow.tasks is not None:
        check_spec(run.spec, tasks=[t.name for t in run.spec.flow.tasks], parameters=None)
    return run


def _listing(names: Collection[str]) -> str:
    shown = ", ".join(list(names)[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return f"{shown}, ... ({more} more)" if more > 0 else shown or "(none)"


def declared_parameters(spec: models.FlowRunSpec) -> list[DeclaredParameter] | None:
    if spec.flow.tasks is None:
        return None
    return [DeclaredParameter(p.name, p.is_required()) for p in spec.flow.parameters or []]


def check_spec(
    spec: models.FlowRunSpec,
    *,
    tasks: Sequence[str],
    parameters: Sequence[DeclaredParameter] | None,
    given_parameters: Collection[str] | None = None,
) -> None:
    """Check names against the resolved flow; raise `SpecError` listing every problem.

    `tasks` are the flow's task names (slugs); `parameters` the flow's declared parameters
    (None: take them from an inline flow, or skip the parameter checks for a `flow.ref` whose
    parameters are unknown). `given_parameters` defaults to the names in `spec.parameters` and
    `spec.parametersFrom`.
    """
    known = list(tasks)
    known_set = set(known)
    problems: list[str] = []

    def unknown(where: str, name: str) -> None:
        if name not in known_set:
            problems.append(f"{where}: unknown task {name!r}; known tasks: {_listing(known)}")

    for i, name in enumerate(spec.start_tasks or []):
        unknown(f"spec.startTasks[{i}]", name)
    for i, name in enumerate(spec.return_tasks or []):
        unknown(f"spec.returnTasks[{i}]", name)
    for name in spec.task_states or {}:
        unknown(f"spec.taskStates.{name}", name)
    for i, name in enumerate(spec.flow.reference_tasks or []):
        unknown(f"spec.flow.referenceTasks[{i}]", name)
    for i, task in enumerate(spec.flow.tasks or []):
        for j, name in enumerate(task.upstream or []):
            unknown(f"spec.flow.tasks[{i}].upstream[{j}]", name)
    if parameters is None:
        parameters = declared_parameters(spec)
    if parameters is not None:
        problems += _parameter_problems(spec, parameters, given_parameters)
    if problems:
        raise SpecError(problems)


def _parameter_problems(
    spec: models.FlowRunSpec,
    declared: Sequence[DeclaredParameter],
    given: Collection[str] | None,
) -> list[str]:
    names = [p.name for p in declared]
    problems = []
    from_secrets = [p.name for p in spec.parameters_from or []]
    for name in spec.parameters or {}:
        if name not in names:
            problems.append(
                f"spec.parameters.{name}: unknown parameter {name!r}; "
                f"the flow declares: {_listing(names)}"
            )
        if name in from_secrets:
            problems.append(f"spec.parameters.{name}: also set by spec.parametersFrom")
    for i, name in enumerate(from_secrets):
        if name not in names:
            problems.append(
                f"spec.parametersFrom[{i}].name: unknown parameter {name!r}; "
                f"the flow declares: {_listing(names)}"
            )
    present = set(given) if given is not None else {*(spec.parameters or {}), *from_secrets}
    missing = [p.name for p in declared if p.required and p.name not in present]
    problems += [f"spec.parameters: missing required parameter {name!r}" for name in missing]
    return problems
