"""Triggers decide from upstream states; Mapped upstreams count through their children."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun import context, triggers
from flowrun.engine import signals
from flowrun.engine import state as s


def ups(*states: s.State) -> dict[Any, s.State]:
    return dict(enumerate(states))


OK, BAD, SKIP = s.Success(), s.Failed(), s.Skipped()


@pytest.mark.parametrize(
    ("trigger", "passing", "failing"),
    [
        (triggers.all_successful, ups(OK, SKIP, s.Cached()), ups(OK, BAD)),
        (triggers.all_failed, ups(BAD, s.TimedOut()), ups(BAD, OK)),
        (triggers.any_successful, ups(BAD, OK), ups(BAD, s.TriggerFailed())),
        (triggers.any_failed, ups(OK, BAD), ups(OK, OK)),
        (triggers.all_finished, ups(OK, BAD, SKIP), ups(OK, s.Pending())),
        (triggers.always_run, ups(BAD), ups(s.Running())),
    ],
)
def test_trigger_passes_and_fails(
    trigger: Any, passing: dict[Any, s.State], failing: dict[Any, s.State]
) -> None:
    assert trigger(passing) is True
    assert trigger({}) is True
    with pytest.raises(signals.TRIGGERFAIL):
        trigger(failing)


def test_mapped_upstreams_are_judged_by_their_children() -> None:
    mapped = s.Mapped(map_states=(OK, BAD))
    with pytest.raises(signals.TRIGGERFAIL):
        triggers.all_successful(ups(mapped))
    assert triggers.any_failed(ups(mapped))


def test_not_all_skipped() -> None:
    assert triggers.not_all_skipped(ups(SKIP, OK))
    with pytest.raises(signals.SKIP):
        triggers.not_all_skipped(ups(SKIP, SKIP))
    with pytest.raises(signals.SKIP):
        triggers.not_all_skipped({})  # as in Prefect: no upstream counts as all skipped
    with pytest.raises(signals.TRIGGERFAIL):
        triggers.not_all_skipped(ups(SKIP, BAD))


def test_manual_only_pauses_until_resumed() -> None:
    with pytest.raises(signals.PAUSE):
        triggers.manual_only(ups(OK))
    with context(resume=True):
        assert triggers.manual_only(ups(OK))


@pytest.mark.parametrize(
    ("at_least", "at_most", "n_ok", "n_total", "passes"),
    [
        (2, None, 2, 4, True),
        (3, None, 2, 4, False),
        (None, 1, 2, 4, False),
        (0.5, None, 2, 4, True),
        (0.75, None, 2, 4, False),
        (None, 0.5, 2, 4, True),
        (1, 3, 0, 4, False),
    ],
)
def test_some_successful_counts_and_fractions(
    at_least: float | None, at_most: float | None, n_ok: int, n_total: int, passes: bool
) -> None:
    states = [OK] * n_ok + [BAD] * (n_total - n_ok)
    trigger = triggers.some_successful(at_least=at_least, at_most=at_most)
    if passes:
        assert trigger(ups(*states))
    else:
        with pytest.raises(signals.TRIGGERFAIL):
            trigger(ups(*states))


def test_some_failed() -> None:
    assert triggers.some_failed(at_least=1)(ups(OK, BAD))
    with pytest.raises(signals.TRIGGERFAIL):
        triggers.some_failed(at_least=2)(ups(OK, BAD))
