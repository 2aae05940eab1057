"""TaskEvent: the plain record of one task state change, for status writers and logs.

Plain values only, so a Dask worker can ship it to the client as a msgpack dict and the
client never unpickles user objects to learn how a task is doing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

from flowrun.engine import state as states


@dataclasses.dataclass(frozen=True)
class TaskEvent:
    task: str
    map_index: int | None
    state: str
    message: str | None
    run_count: int
    timestamp: float
    is_finished: bool
    # Engine bookkeeping that rides along: when a Scheduled state may start (epoch s),
    # and how many children a Mapped parent has.
    start_time: float | None = None
    n_map_states: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskEvent:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


OnTaskState = Callable[[TaskEvent], None]


def event_for(slug: str, map_index: int | None, st: states.State, run_count: int) -> TaskEvent:
    start = getattr(st, "start_time", None)
    return TaskEvent(
        task=slug,
        map_index=map_index,
        state=type(st).__name__,
        message=None if st.message is None else str(st.message),
        run_count=run_count,
        timestamp=time.time(),
        is_finished=st.is_finished(),
        start_time=None if start is None else start.timestamp(),
        n_map_states=st.n_map_states if isinstance(st, states.Mapped) else None,
    )


def state_of(raw: Mapping[str, Any], result: Any) -> states.State:
    """The State an event dict (`TaskEvent.to_dict()`) describes, with `result` as its result."""
    cls = states.BY_NAME.get(raw["state"], states.State)
    kwargs: dict[str, Any] = {"result": result}
    if issubclass(cls, states.Scheduled):
        start = raw.get("start_time")
        kwargs["start_time"] = None if start is None else dt.datetime.fromtimestamp(start, dt.UTC)
    if issubclass(cls, states.Retrying):
        kwargs["run_count"] = raw.get("run_count") or 0
    if issubclass(cls, states.Mapped):
        kwargs["n_map_states"] = raw.get("n_map_states") or 0
        kwargs["result"] = None
    return cls(raw.get("message"), **kwargs)


def call_handlers(
    handlers: list[Callable[..., Any]], owner: Any, old: states.State, new: states.State
) -> states.State:
    """Run state handlers in turn, as Prefect does: each gets what the previous returned
    (a State unsealed for it, so `new_state.message = ...` works) or, when it returns
    None, what it was given. What the last leaves is sealed; a handler that returned
    something other than a State makes that fail (AttributeError), as in Prefect."""
    current: Any = new
    for handler in handlers:
        given = current.thaw() if isinstance(current, states.State) else current
        current = handler(owner, old, given) or given
    sealed: states.State = current.seal()
    return sealed
