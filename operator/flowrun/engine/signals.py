"""Signals: exceptions that a task (or a trigger) raises to choose its own state.

They derive from `BaseException`, so a task's `except Exception:` cannot swallow them.
`ENDRUN` is the runners' own signal: a pipeline step raises it to stop with a given state.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flowrun.engine import state as states


class FlowrunSignal(BaseException):
    """Base class of everything the engine catches by type."""


class ENDRUN(FlowrunSignal):
    """Stop the runner's pipeline and use `state` as the final state."""

    def __init__(self, state: states.State) -> None:
        super().__init__(state)
        self.state = state


class TaskTimeout(FlowrunSignal):
    """Raised inside a running task when its timeout expires."""


class TaskCancelled(FlowrunSignal):
    """Raised inside a running task when its flow run is cancelled."""


class PrefectStateSignal(FlowrunSignal):
    """A signal that carries the state it stands for (`signal.state`); Prefect's name,
    also `StateSignal`."""

    state_class: ClassVar[type[states.State]] = states.State

    def __init__(self, message: str | None = None, *args: Any, **state_kwargs: Any) -> None:
        super().__init__(message, *args)
        # As in Prefect, the state's result is the signal itself unless one is given.
        state_kwargs.setdefault("result", self)
        self.state = self.state_class(message, **state_kwargs)


StateSignal = PrefectStateSignal


class FAIL(StateSignal):
    state_class = states.Failed


class TRIGGERFAIL(FAIL):
    state_class = states.TriggerFailed


class VALIDATIONFAIL(FAIL):
    state_class = states.ValidationFailed


class SUCCESS(StateSignal):
    state_class = states.Success


class SKIP(StateSignal):
    state_class = states.Skipped


class RETRY(StateSignal):
    """Retry now, regardless of `max_retries` (as in Prefect 1.x)."""

    state_class = states.Retrying


class PAUSE(StateSignal):
    state_class = states.Paused


class LOOP(StateSignal):
    """Finish this iteration with `result` and run the task again with it in the context.

    Without a `result`, the iteration's result is the signal's repr (as in Prefect)."""

    state_class = states.Looped

    def __init__(self, message: str | None = None, *args: Any, **state_kwargs: Any) -> None:
        state_kwargs.setdefault("result", repr(self))
        super().__init__(message, *args, **state_kwargs)


# Prefect 1.x's name.
PrefectSignal = FlowrunSignal


def signal_from_state(state: states.State) -> type[StateSignal]:
    """The signal class that stands for `state`'s class (ValueError if there is none)."""
    todo = set(StateSignal.__subclasses__())
    found: dict[type[states.State], type[StateSignal]] = {}
    while todo:
        sig = todo.pop()
        found[sig.state_class] = sig
        todo |= set(sig.__subclasses__())
    try:
        return found[type(state)]
    except KeyError:
        raise ValueError(f"No signal matches the provided state: {state}") from None
