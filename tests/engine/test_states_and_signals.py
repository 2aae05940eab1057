"""States are immutable values with Prefect's hierarchy; signals escape `except Exception`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
import sys

import pytest

from flowrun.engine import signals
from flowrun.engine import state as s

FINISHED = [
    s.Success,
    s.Cached,
    s.Mapped,
    s.Skipped,
    s.Looped,
    s.Cancelled,
    s.Failed,
    s.TimedOut,
    s.TriggerFailed,
]
PENDING = [s.Pending, s.Scheduled, s.Paused, s.Resume, s.Retrying]


@pytest.mark.parametrize("cls", FINISHED)
def test_finished_states_are_finished_and_not_pending(cls: type[s.State]) -> None:
    st = cls()
    assert st.is_finished()
    assert not st.is_pending()
    assert not st.is_running()


@pytest.mark.parametrize("cls", PENDING)
def test_pending_family(cls: type[s.State]) -> None:
    st = cls()
    assert st.is_pending()
    assert not st.is_finished()


def test_predicates_follow_the_hierarchy() -> None:
    assert s.TimedOut().is_failed()
    assert s.TriggerFailed().is_failed()
    assert s.Skipped().is_successful()
    assert s.Cached().is_successful()
    assert s.Mapped().is_successful()
    assert s.Retrying().is_scheduled()
    assert s.Retrying().is_retrying()
    assert s.Cached().is_cached()
    assert s.Mapped().is_mapped()
    assert s.Skipped().is_skipped()
    assert not s.Cancelled().is_successful()
    assert not s.Cancelled().is_failed()
    assert not s.Looped().is_successful()
    assert not s.Looped().is_failed()
    assert s.Cancelling().is_running()


def test_states_are_immutable_values() -> None:
    st = s.Success("done", result=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.result = 2  # type: ignore[misc]
    assert st.replace(result=2).result == 2
    assert st.result == 1
    assert s.Success("a", result=1) == s.Success("b", result=1)  # message is not part of equality
    assert s.Success(result=1) != s.Failed(result=1)
    assert pickle.loads(pickle.dumps(st)) == st


def test_scheduled_start_times_are_utc_aware() -> None:
    assert s.Scheduled().start_time is not None
    assert s.Scheduled().start_time.tzinfo is not None  # type: ignore[union-attr]
    assert s.Retrying().start_time.utcoffset() == dt.timedelta(0)  # type: ignore[union-attr]
    assert s.Paused().start_time is None


def test_mapped_counts_its_children() -> None:
    assert s.Mapped(map_states=(s.Success(), s.Failed())).n_map_states == 2
    assert s.Mapped(n_map_states=5).n_map_states == 5


@pytest.mark.parametrize(
    ("signal", "cls"),
    [
        (signals.FAIL, s.Failed),
        (signals.TRIGGERFAIL, s.TriggerFailed),
        (signals.VALIDATIONFAIL, s.ValidationFailed),
        (signals.SUCCESS, s.Success),
        (signals.SKIP, s.Skipped),
        (signals.RETRY, s.Retrying),
        (signals.PAUSE, s.Paused),
        (signals.LOOP, s.Looped),
    ],
)
def test_signals_carry_their_state_and_escape_except_exception(
    signal: type[signals.StateSignal], cls: type[s.State]
) -> None:
    caught = None
    try:
        try:
            raise signal("why", result=3)
        except Exception:  # a task's broad handler must not swallow it
            pytest.fail("signal was caught by `except Exception`")
    except signals.StateSignal as sig:
        caught = sig
    assert caught is not None
    assert type(caught.state) is cls
    assert caught.state.message == "why"
    assert caught.state.result == 3


def test_endrun_carries_a_state() -> None:
    end = signals.ENDRUN(s.Skipped("no"))
    assert end.state == s.Skipped()
    assert not isinstance(end, Exception)


def test_signal_names_and_a_loop_without_result_as_prefect_documents() -> None:
    error = signals.PrefectStateSignal("you did something incorrectly")
    assert repr(error) == "PrefectStateSignal('you did something incorrectly')"
    assert signals.StateSignal is signals.PrefectStateSignal
    loop = signals.LOOP("again")
    assert loop.state.result == "LOOP('again')"  # no result given: the signal's repr
    assert signals.LOOP(result=3).state.result == 3


def test_a_state_counts_its_result_in_its_size() -> None:
    small, big = s.State(result=1), s.State(result="x" * 10_000)
    assert big.__sizeof__() - small.__sizeof__() >= 10_000 - 100
    assert sys.getsizeof(big) >= big.__sizeof__()
