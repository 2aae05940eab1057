"""Task results written (`checkpoint`) and found again (`target`), as in Prefect 1.x.

Both happen in the TaskRunner, so where the task runs (a Dask worker in the operator's
path): the value never travels to the client for this. Writing needs the run context's
`checkpointing` to be True (Prefect's switch, set by its configuration; here
`flow.run(context={"checkpointing": True})` or `with flowrun.context(checkpointing=True)`)
and the task's `checkpoint` not False and a `result=` that stores (LocalResult, S3Result,
...). A `target` is looked for on every run, checkpointing or not, as in Prefect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrun.engine import cache_validators
from flowrun.engine import state as states
from flowrun.engine.result.base import ResultNotImplementedError


def formatting(context: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What a location template may name: parameters, context keys, the task's inputs."""
    values = {**(context.get("parameters") or {}), **context, **inputs}
    values.pop("self", None)  # would clash with the Result methods' own `self`
    return values


def found_at_target(
    task: Any, context: Mapping[str, Any], inputs: Mapping[str, Any]
) -> states.State | None:
    """A Cached state holding the result stored at the task's target, if one is there."""
    result, target = task.result, task.target
    if result is None or not target:
        return None
    values = formatting(context, inputs)
    location = target if isinstance(target, str) else target(**values)
    if not result.exists(location, **values):
        return None
    known = location.format(**values)
    return states.Cached(
        f"Result found at task target {known}",
        result=result.read(known),
        hashed_inputs=cache_validators.hash_inputs(inputs),
        cached_parameters=dict(values.get("parameters") or {}),
        cached_result_expiration=None,
    )


def checkpointed(
    task: Any, context: Mapping[str, Any], inputs: Mapping[str, Any], value: Any
) -> Any:
    """The value, written to the task's Result when checkpointing applies: then the
    written Result (a state given it keeps the value as `result`, the Result as
    `_result`, with its location)."""
    if (
        context.get("checkpointing") is not True
        or task.checkpoint is False
        or task.result is None
        or value is None
    ):
        return value
    try:
        return task.result.write(value, **formatting(context, inputs))
    except ResultNotImplementedError:
        return value
