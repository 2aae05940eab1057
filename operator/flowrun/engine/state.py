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
import sys
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import cloudpickle

from flowrun.engine.context import context as _context
from flowrun.engine.result.base import Result
from flowrun.engine.state_results import StateResults

S = TypeVar("S", bound="State")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ambient(key: str) -> Any:
    """A value of the run context where the state is made (Prefect's states read it)."""
    return _context.get(key)


@dataclasses.dataclass(repr=False)
class State(StateResults):
    """The base state. `message` is for people and, like `context`, not part of equality.

    A state is sealed (immutable) once made. A state handler receives an unsealed copy
    (`thaw()`) that it may change in place, as Prefect's handler idioms do
    (`new_state.message = ...`); the runner seals what the handler gives back.
    A `Result` given as `result` is unwrapped: `result` is its value, `_result` the Result.
    """

    message: Any = dataclasses.field(default=None, compare=False)
    result: Any = None
    context: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    cached_inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    color: ClassVar[str] = "#696969"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sealed", False)
        self.context = dict(self.context or {})
        self.cached_inputs = dict(self.cached_inputs or {})
        tags = _ambient("task_tags")
        if tags is not None:
            self.context.setdefault("tags", list(tags))
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_sealed", False):
            raise dataclasses.FrozenInstanceError(
                f"cannot assign to field {name!r}: a recorded state is immutable "
                "(a state handler may change the state it receives; elsewhere use replace())"
            )
        if name == "result":
            given = value if isinstance(value, Result) else None
            object.__setattr__(self, "_given_result", given)
            value = value.value if given is not None else value
        object.__setattr__(self, name, value)

    def __sizeof__(self) -> int:
        """With its result's size, as Prefect's (`sys.getsizeof(state)`)."""
        return int(super().__sizeof__()) + sys.getsizeof(self.result)

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
        # As in Prefect: an exception result that cannot be pickled travels as text.
        data = dict(self.__dict__)
        result = data.get("result")
        if isinstance(result, Exception):
            try:
                cloudpickle.dumps(result)
            except Exception as exc:
                data["result"] = (
                    f"The following exception could not be pickled due to {exc!r}: {result!r}"
                )
                data["_given_result"] = None
        return data

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)

    def __repr__(self) -> str:
        if self.message is not None:
            return f'<{type(self).__name__}: "{self.message}">'
        return f"<{type(self).__name__}>"

    def replace(self: S, **changes: Any) -> S:
        """A copy with some fields changed (states are never mutated)."""
        given = self.__dict__.get("_given_result")
        if "result" not in changes and given is not None:
            changes["result"] = given
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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.start_time is not None and self.start_time.tzinfo is None:
            # A naive time is taken as UTC, as Prefect does.
            object.__setattr__(self, "start_time", self.start_time.replace(tzinfo=dt.UTC))
        # The run count travels in a scheduled state's context, as in Prefect.
        count = _ambient("task_run_count")
        if count is not None:
            self.context.setdefault("task_run_count", count)


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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.run_count <= 0:  # not given: this run's count, as in Prefect
            object.__setattr__(self, "run_count", _ambient("task_run_count") or 1)


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
    loop_count: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loop_count <= 0:  # not given: this run's loop count, as in Prefect
            object.__setattr__(self, "loop_count", _ambient("task_loop_count") or 1)


@dataclasses.dataclass(repr=False)
class Success(Finished):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Cached(Success):
    """A reusable success: validators compare its inputs, parameters and expiration."""

    hashed_inputs: Mapping[str, str] | None = None
    cached_parameters: Mapping[str, Any] | None = None
    cached_result_expiration: dt.datetime | None = None


@dataclasses.dataclass(repr=False, kw_only=True)
class Mapped(Success):
    """A mapped parent. It is successful even when children failed: look at `map_states`."""

    map_states: list[State] = dataclasses.field(default_factory=list)
    n_map_states: int = -1

    def __post_init__(self) -> None:
        object.__setattr__(self, "map_states", list(self.map_states))  # a list, as in Prefect
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

    def __post_init__(self) -> None:
        super().__post_init__()
        inner = self.state
        while isinstance(inner, _MetaState):  # meta states never nest
            inner = inner.state
        object.__setattr__(self, "state", inner)


@dataclasses.dataclass(repr=False, kw_only=True)
class ClientFailed(_MetaState):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Submitted(_MetaState):
    pass


@dataclasses.dataclass(repr=False, kw_only=True)
class Queued(_MetaState):
    start_time: dt.datetime | None = dataclasses.field(default_factory=now)

    def is_scheduled(self) -> bool:
        return True


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
# Prefect's UI colours, part of its state API.
_COLORS = {
    "State": "#696969",
    "Pending": "#7ebdff",
    "Scheduled": "#ffab00",
    "Paused": "#99a8e8",
    "ClientFailed": "#eb0000",
    "Submitted": "#ffdf5d",
    "Queued": "#ffea7f",
    "Resume": "#f58c0c",
    "Retrying": "#f66a0a",
    "Running": "#3d67ff",
    "Cancelling": "#E8E8E8",
    "Finished": "#003ccb",
    "Looped": "#003ccb",
    "Success": "#28a745",
    "Cached": "#34d058",
    "Mapped": "#003ccb",
    "Cancelled": "#bdbdbd",
    "Failed": "#eb0000",
    "TimedOut": "#ff4e33",
    "TriggerFailed": "#ff5131",
    "ValidationFailed": "#ff5131",
    "Skipped": "#62757f",
    "_MetaState": "#696969",
}
for _cls in _ALL:
    _cls.color = _COLORS[_cls.__name__]
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
