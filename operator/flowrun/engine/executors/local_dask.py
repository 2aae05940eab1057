"""LocalDaskExecutor: tasks run through one of Dask's local schedulers.

`scheduler` is "threads" (default), "processes" or "synchronous"/"sync", as in Prefect.
Each task is computed on its own as it is submitted, so tasks run one at a time; what the
scheduler choice changes is where a task runs ("processes": a worker process, so the task
and its inputs must survive cloudpickle, as on a cluster).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flowrun.engine import calls, events
from flowrun.engine import state as states
from flowrun.engine.executors import base

SCHEDULERS = {"threads": "threads", "processes": "processes", "sync": "synchronous"}
SCHEDULERS["synchronous"] = "synchronous"


class LocalDaskExecutor:
    def __init__(self, scheduler: str = "threads", **kwargs: Any) -> None:
        if scheduler not in SCHEDULERS:
            raise ValueError(
                f"LocalDaskExecutor: scheduler {scheduler!r} is not one of {sorted(SCHEDULERS)}"
            )
        self.scheduler = SCHEDULERS[scheduler]
        self.dask_config = kwargs

    def _compute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from dask.base import compute  # noqa: PLC0415 - `import flowrun` stays light
        from dask.delayed import delayed  # noqa: PLC0415

        work = delayed(functools.partial(fn, *args, **kwargs), pure=False)()
        (value,) = compute(work, scheduler=self.scheduler, **self.dask_config)  # type: ignore[no-untyped-call]
        return value

    def _run_task(
        self, call: calls.TaskCall, state: Any, upstream: list[Any], reduced: list[Any]
    ) -> states.State:
        if self.scheduler == "processes":
            call = _without_sinks(call)
        result: states.State = self._compute(calls.run_task, call, state, upstream, reduced)
        return result

    @contextmanager
    def start(self) -> Iterator[None]:
        yield

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._compute(fn, *args, **kwargs)

    def wait(self, futures: Any) -> Any:
        return futures

    @contextmanager
    def session(
        self, *, run_id: str, on_task_state: events.OnTaskState | None
    ) -> Iterator[base.Session]:
        yield from base.in_process_session(
            self._run_task, run_id=run_id, on_task_state=on_task_state
        )


def _without_sinks(call: calls.TaskCall) -> calls.TaskCall:
    # A callback into this process cannot run in a worker process.
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(call, on_event=None, on_done=None)
