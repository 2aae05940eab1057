"""Triggers: functions of a task's upstream states that decide whether it may run.

A trigger returns True or raises a signal (TRIGGERFAIL, SKIP, PAUSE). Mapped upstreams are
looked at through their children, as in Prefect 1.x.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowrun.engine import signals
from flowrun.engine import state as states
from flowrun.engine.context import context

Trigger = Callable[[Mapping[Any, states.State]], bool]


def _states(upstream_states: Mapping[Any, states.State]) -> list[states.State]:
    # Prefect's triggers also take a plain collection of states (e.g. an empty set).
    found = upstream_states.values() if isinstance(upstream_states, Mapping) else upstream_states
    return states.flatten_mapped(found)


def all_successful(upstream_states: Mapping[Any, states.State]) -> bool:
    if not all(s.is_successful() for s in _states(upstream_states)):
        raise signals.TRIGGERFAIL(
            'Trigger was "all_successful" but some of the upstream tasks failed.'
        )
    return True


def all_failed(upstream_states: Mapping[Any, states.State]) -> bool:
    if not all(s.is_failed() for s in _states(upstream_states)):
        raise signals.TRIGGERFAIL(
            'Trigger was "all_failed" but some of the upstream tasks succeeded.'
        )
    return True


def all_finished(upstream_states: Mapping[Any, states.State]) -> bool:
    if not all(s.is_finished() for s in _states(upstream_states)):
        raise signals.TRIGGERFAIL(
            'Trigger was "all_finished" but some of the upstream tasks were not finished.'
        )
    return True


always_run = all_finished


def manual_only(upstream_states: Mapping[Any, states.State]) -> bool:
    if context.get("resume"):
        return True
    raise signals.PAUSE('Trigger function is "manual_only"')


def any_successful(upstream_states: Mapping[Any, states.State]) -> bool:
    found = _states(upstream_states)
    if found and not any(s.is_successful() for s in found):
        raise signals.TRIGGERFAIL(
            'Trigger was "any_successful" but none of the upstream tasks succeeded.'
        )
    return True


def any_failed(upstream_states: Mapping[Any, states.State]) -> bool:
    found = _states(upstream_states)
    if found and not any(s.is_failed() for s in found):
        raise signals.TRIGGERFAIL('Trigger was "any_failed" but none of the upstream tasks failed.')
    return True


def not_all_skipped(upstream_states: Mapping[Any, states.State]) -> bool:
    found = _states(upstream_states)
    if all(s.is_skipped() for s in found):
        raise signals.SKIP("All upstream tasks were skipped.")
    if not all(s.is_successful() for s in found):
        raise signals.TRIGGERFAIL(
            'Trigger was "not_all_skipped" but some of the upstream tasks failed.'
        )
    return True


def _bounds(total: int, at_least: float | None, at_most: float | None) -> tuple[float, float]:
    # Below 1 a bound is a fraction of the upstream count; from 1 up it is a count.
    low = 0.0 if at_least is None else (at_least * total if at_least < 1 else at_least)
    high = float(total) if at_most is None else (at_most * total if at_most < 1 else at_most)
    return low, high


def _some(
    kind: str,
    predicate: Callable[[states.State], bool],
    at_least: float | None,
    at_most: float | None,
) -> Trigger:
    def trigger(upstream_states: Mapping[Any, states.State]) -> bool:
        found = _states(upstream_states)
        if not found:
            return True  # nothing upstream: nothing to count, as in Prefect
        count = sum(1 for s in found if predicate(s))
        low, high = _bounds(len(found), at_least, at_most)
        if not low <= count <= high:
            raise signals.TRIGGERFAIL(
                f'Trigger was "some_{kind}" with at_least={at_least}, at_most={at_most}, '
                f"but {count} of {len(found)} upstream tasks were {kind}."
            )
        return True

    trigger.__name__ = f"some_{kind}"
    return trigger


def some_successful(at_least: float | None = None, at_most: float | None = None) -> Trigger:
    return _some("successful", states.State.is_successful, at_least, at_most)


def some_failed(at_least: float | None = None, at_most: float | None = None) -> Trigger:
    return _some("failed", states.State.is_failed, at_least, at_most)


BY_NAME: Mapping[str, Trigger] = {
    "all_successful": all_successful,
    "all_failed": all_failed,
    "all_finished": all_finished,
    "always_run": always_run,
    "manual_only": manual_only,
    "any_successful": any_successful,
    "any_failed": any_failed,
    "not_all_skipped": not_all_skipped,
}
