"""Cache validators: decide whether a Cached state may stand in for running a task again.

Signature: `validator(state, inputs, parameters) -> bool`. Every validator first checks
the expiration. As in Prefect 1.x, `duration_only` (the default with `cache_for`) ignores
inputs: use `all_inputs` when the result depends on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flowrun.engine import state as states
from flowrun.engine.result.base import Result

Validator = Callable[[states.Cached, Mapping[str, Any], Mapping[str, Any]], bool]


def tokenize(value: Any) -> str:
    """A stable hash of an input value (dask's tokenize, which handles most types)."""
    from dask.base import tokenize as dask_tokenize  # noqa: PLC0415 - dask only when caching

    token: str = dask_tokenize(value)
    return token


def hash_inputs(inputs: Mapping[str, Any]) -> dict[str, str]:
    return {key: tokenize(value) for key, value in inputs.items()}


def _unexpired(state: states.Cached) -> bool:
    expiry = state.cached_result_expiration
    return expiry is None or expiry > states.now()


def never_use(
    state: states.Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]
) -> bool:
    return False


def duration_only(
    state: states.Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]
) -> bool:
    return _unexpired(state)


def all_inputs(
    state: states.Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]
) -> bool:
    if not _unexpired(state):
        return False
    if state.hashed_inputs is not None:
        return dict(state.hashed_inputs) == hash_inputs(inputs)
    return _cached_values(state) == dict(inputs)


def _cached_values(state: states.Cached) -> dict[str, Any]:
    """`cached_inputs` as values (Prefect keeps them as Result objects)."""
    return {
        key: value.value if isinstance(value, Result) else value
        for key, value in (state.cached_inputs or {}).items()
    }


def all_parameters(
    state: states.Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]
) -> bool:
    return _unexpired(state) and dict(state.cached_parameters or {}) == dict(parameters)


def partial_inputs_only(validate_on: Iterable[str] | None = None) -> Validator:
    keys = None if validate_on is None else tuple(validate_on)

    def partial_inputs_only(
        state: states.Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]
    ) -> bool:
        if not _unexpired(state):
            return False
        if keys is None:
            return True
        given = inputs or {}
        if state.hashed_inputs:
            hashed = state.hashed_inputs
            return all(key in given and hashed.get(key) == tokenize(given[key]) for key in keys)
        cached = _cached_values(state)
        return all(key in given and key in cached and cached[key] == given[key] for key in keys)

    return partial_inputs_only


def partial_parameters_only(validate_on: Iterable[str] | None = None) -> Validator:
    keys = None if validate_on is None else tuple(validate_on)

    def partial_parameters_only(
        state: states.Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]
    ) -> bool:
        if not _unexpired(state):
            return False
        if keys is None:
            return True
        cached = state.cached_parameters or {}
        given = parameters or {}
        return all(key in cached and key in given and cached[key] == given[key] for key in keys)

    return partial_parameters_only


BY_NAME: Mapping[str, Validator] = {
    "never_use": never_use,
    "duration_only": duration_only,
    "all_inputs": all_inputs,
    "all_parameters": all_parameters,
    "partial_inputs_only": partial_inputs_only(),
    "partial_parameters_only": partial_parameters_only(),
}
