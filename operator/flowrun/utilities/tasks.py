"""`flowrun.utilities.tasks`, as `prefect.utilities.tasks`."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flowrun.engine import signals
from flowrun.engine import state as states
from flowrun.engine.context import context
from flowrun.engine.task import as_task, task
from flowrun.utilities.mapping import apply_map


@contextmanager
def tags(*names: str) -> Iterator[None]:
    """Tasks created in the block get these tags (added to any enclosing `tags` block's)."""
    merged = set(names) | set(context.get("tags") or ())
    with context(tags=frozenset(merged)):
        yield


def pause_task(message: str | None = None, duration: dt.timedelta | None = None) -> None:
    """Pause the running task (unless it is being resumed) until resumed or `duration` ends."""
    start_time = None if duration is None else states.now() + duration
    if context.get("resume", False) is False:
        raise signals.PAUSE(
            message or "Pause signal raised during task execution.", start_time=start_time
        )


def defaults_from_attrs(*attr_args: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Keyword arguments of `run` that fall back to the task's attributes of the same name."""

    def wrapper(run_method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(run_method)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            for attr in attr_args:
                kwargs.setdefault(attr, getattr(self, attr))
            return run_method(self, *args, **kwargs)

        return method

    return wrapper


__all__ = ["apply_map", "as_task", "defaults_from_attrs", "pause_task", "tags", "task"]
