"""SynchronousExecutor: tasks go through Dask's synchronous scheduler, in this thread.

Useful to check that a flow survives Dask's handling of arguments before moving to a
cluster, while still debugging in one thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flowrun.engine import calls, events
from flowrun.engine import state as states
from flowrun.engine.executors import base


def _compute(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from dask.base import compute  # noqa: PLC0415 - `import flowrun` stays light
    from dask.delayed import delayed  # noqa: PLC0415

    # Arguments ride in a partial so that Dask does not traverse (and rebuild) them.
    work = delayed(functools.partial(fn, *args, **kwargs), pure=False)()
    (value,) = compute(work, scheduler="synchronous")  # type: ignore[no-untyped-call]
    return value


def _run_task(
    call: calls.TaskCall, state: Any, upstream: list[Any], reduced: list[Any]
) -> states.State:
    result: states.State = _compute(calls.run_task, call, state, upstream, reduced)
    return result


class SynchronousExecutor(base.Executor):
    @contextmanager
    def start(self) -> Iterator[None]:
        yield

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        extra_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        return _compute(fn, *args, **kwargs)

    def wait(self, futures: Any) -> Any:
        return futures

    @contextmanager
    def session(
        self, *, run_id: str, on_task_state: events.OnTaskState | None
    ) -> Iterator[base.Session]:
        yield from base.in_process_session(_run_task, run_id=run_id, on_task_state=on_task_state)
