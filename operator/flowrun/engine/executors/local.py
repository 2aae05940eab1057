"""LocalExecutor: runs every task in the calling thread, at submit time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flowrun.engine import events
from flowrun.engine.executors import base


class LocalExecutor(base.Executor):
    """In process and synchronous: the fastest way to run and debug a flow."""

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
        return fn(*args, **kwargs)

    def wait(self, futures: Any) -> Any:
        return futures

    @contextmanager
    def session(
        self, *, run_id: str, on_task_state: events.OnTaskState | None
    ) -> Iterator[base.Session]:
        # Through `submit()`, so that a subclass overriding it sees every task call.
        yield from base.in_process_session(
            self.run_call, run_id=run_id, on_task_state=on_task_state
        )
