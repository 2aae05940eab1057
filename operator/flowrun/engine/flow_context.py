"""The flow being built: which `with Flow(...)` block a task call binds into.

It lives below both `task` and `flow_base`, so a task can find its flow without
importing the Flow class (which imports tasks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Protocol

from flowrun.engine.context import context

# The context key of the tasks made inside a `with Flow(...)` block (to warn of unused ones).
UNUSED_TRACKER = "_unused_task_tracker"


class FlowBuilder(Protocol):
    """What a task needs of the flow it binds into."""

    def set_dependencies(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        task: Any,
        upstream_tasks: Iterable[Any] | None = None,
        downstream_tasks: Iterable[Any] | None = None,
        keyword_tasks: Mapping[str, Any] | None = None,
        mapped: bool = False,
        validate: bool | None = None,
    ) -> None: ...


_CURRENT: ContextVar[Any] = ContextVar("flowrun_flow", default=None)


def current_flow() -> Any:
    """The flow of the enclosing `with Flow(...)` block, if any (else None)."""
    return _CURRENT.get()


def enter(flow: FlowBuilder) -> Token[Any]:
    return _CURRENT.set(flow)


def leave(token: Token[Any]) -> None:
    _CURRENT.reset(token)


def track(made: Any, used: Any, *, constant: bool) -> None:
    """Note a task made in a `with Flow(...)` block; a task copied counts as used."""
    tracker = context.get(UNUSED_TRACKER)
    if tracker is None:
        return
    tracker.discard(used)
    if not constant:
        tracker.add(made)
