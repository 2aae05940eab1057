"""Task and flow states: immutable values with Prefect Core 1.x's class hierarchy.

Every runner step returns a new state instead of mutating the old one, so a state can be
shared between threads, cached, and shipped between processes without surprises. The
class hierarchy is the API: `is_*` predicates are `isinstance` checks, so a `TimedOut`
is failed and a `Mapped` is successful, exactly as in Prefect 1.x.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import pickle
from collections.abc import Mapping
from typing import Any, TypeVar

S = TypeVar("S", bound="State")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(repr=False)
class State:
    """The base state. `message` is for people and does not take part in equality.

    A state is sealed (immutable) once made. A state handler receives an unsealed copy
    (`thaw()`) that it may change in place, as Prefect's handler idioms do
    (`new_state.message = ...`); the runner seals what the handler gives back.
    """

    message: str | None = dataclasses.field(default=None, compare=False)
    result: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_sealed", False):
            raise dataclasses.FrozenInstanceError(
                f"cannot assign to field {name!r}: a recorded state is immutable "
                "(a state handler may change the state it receives; elsewhere use replace())"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_sealed", False):
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    def thaw(self: S) -> S:
        """An unsealed copy, for a state handler to change in place."""
        new = copy.copy(self)
        object.__setattr__(new, "_sealed", False)
        return new

    def seal(self: S) -> S:
        object.__setattr__(self, "_sealed", True)
        return self

    def __getstate__(self) -> dict[str, Any]:
        # As in Prefect: an exception result that cannot be pickled travels as its repr.
        data = dict(self.__dict__)
        result = data.get("result")
        if isinstance(result, Exception):
            try:
                pickle.dumps(result)
            except Exception:
                data["result"] = repr(result)
        return data

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)

    def __repr__(self) -> str:
        if self.message:
            return f"<{type(self).__name__}: {self.message!r}>"
        return f"<{type(self).__name__}>"

    def replace(self: S, **changes: Any) -> S:
        """A copy with some fields changed (states are never mutated)."""
        return dataclasses.replace(self, **changes)

    def is_pending(self) -> bool:
        return isinstance(self, Pending)

    def is_scheduled(self) -> bool:
        return isinstance(self, Scheduled)

    def is_retrying(self) -> bool:
        return isinstance(self, Retrying)

    def is_paused(self) -> bool:
        return isinstance(self, Paused)

    def is_running(self) -> bool:
        return isinstance(self, Running)

    def is_finished(self) -> bool:
        return isinstance(self, Finished)

    def is_successful(self) -> bool:
        return isinstance(self, Success)

    def is_failed(self) -> bool:
        return isinstance(self, Failed)

    def is_skipped(self) -> bool:
        return isinstance(self, Skipped)

    def is_cached(self) -> bool:
        return isinstance(self, Cached)

    def is_mapped(self) -> bool:
        return isinstance(self, Mapped)

    def is_looped(self) -> bool:
        return isinstance(self, Looped)

    def is_cancelled(self) -> bool:
        return isinstance(self, Cancelled)

    def is_meta_state(self) -> bool:
        return isinstance(self, _MetaState)

    def is_submitted(self) -> bool:
        return isinstance(self, Submitted)

    def is_queued(self) -> bool:
        return isinstance(self, Queued)


@dataclasses.dataclass(repr=False)
class Pending(State):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Scheduled(Pending):
    """Waiting for `start_time` (timezone-aware UTC); `None` waits for someone to resume it."""

    start_time: dt.datetime | None = dataclasses.field(default_factory=now)


@dataclasses.dataclass(repr=False, kw_only=True)
class Paused(Scheduled):
    start_time: dt.datetime | None = None


@dataclasses.dataclass(repr=False, kw_only=True)
class Resume(Scheduled):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Retrying(Scheduled):
    """`run_count` is how many runs have happened so far."""

    run_count: int = 0


@dataclasses.dataclass(repr=False)
class Running(State):
    pass


@dataclasses.dataclass(repr=False)
class Cancelling(Running):
    pass


@dataclasses.dataclass(repr=False)
class Finished(State):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Looped(Finished):
    loop_count: int = 1


@dataclasses.dataclass(repr=False)
class Success(Finished):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Cached(Success):
    """A reusable success: validators compare its inputs, parameters and expiration."""

    cached_inputs: Mapping[str, Any] | None = None
    hashed_inputs: Mapping[str, str] | None = None
    cached_parameters: Mapping[str, Any] | None = None
    cached_result_expiration: dt.datetime | None = None


@dataclasses.dataclass(repr=False, kw_only=True)
class Mapped(Success):
    """A mapped parent. It is successful even when children failed: look at `map_states`."""

    map_states: tuple[State, ...] = ()
    n_map_states: int = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_map_states < 0:
            object.__setattr__(self, "n_map_states", len(self.map_states))


@dataclasses.dataclass(repr=False)
class Skipped(Success):
    pass


@dataclasses.dataclass(repr=False)
class Cancelled(Finished):
    pass


@dataclasses.dataclass(repr=False)
class Failed(Finished):
    pass


@dataclasses.dataclass(repr=False)
class TimedOut(Failed):
    pass


@dataclasses.dataclass(repr=False)
class TriggerFailed(Failed):
    pass


@dataclasses.dataclass(repr=False)
class ValidationFailed(Failed):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class _MetaState(State):
    """Wraps another state (Prefect's backend meta states; the local engine unwraps them)."""

    state: State | None = None


@dataclasses.dataclass(repr=False, kw_only=True)
class ClientFailed(_MetaState):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Submitted(_MetaState):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Queued(_MetaState):
    start_time: dt.datetime | None = dataclasses.field(default_factory=now)


_ALL: tuple[type[State], ...] = (
    State,
    Pending,
    Scheduled,
    Paused,
    Resume,
    Retrying,
    Running,
    Cancelling,
    Finished,
    Looped,
    Success,
    Cached,
    Mapped,
    Skipped,
    Cancelled,
    Failed,
    TimedOut,
    TriggerFailed,
    ValidationFailed,
    _MetaState,
    ClientFailed,
    Submitted,
    Queued,
)
for _cls in _ALL:
    # Identity hash, as Prefect's states: equal by value, but results need not be hashable.
    _cls.__hash__ = object.__hash__  # type: ignore[method-assign]
BY_NAME: Mapping[str, type[State]] = {cls.__name__: cls for cls in _ALL}


def flatten_mapped(states: Any) -> list[State]:
    """Replace each Mapped parent by its children (what triggers and flow states look at)."""
    out: list[State] = []
    for st in states:
        if isinstance(st, Mapped):
            out.extend(st.map_states)
        else:
            out.append(st)
    return out
