"""LocalDaskExecutor: tasks run through one of Dask's local schedulers.

`scheduler` is "threads" (default), "processes" or "synchronous" (also "threading",
"multiprocessing", "sync", "single-threaded"), as in Prefect; other keyword arguments are
Dask configuration set while the executor is started (e.g. `num_workers=4`). Inside
`start()` the threads or processes come from one pool of `num_workers` (default: the CPU
count). Each flow task is computed on its own as it is submitted, so tasks run one at a
time; what the scheduler choice changes is where a task runs ("processes": a worker
process, so the task and its inputs must survive cloudpickle, as on a cluster).
`submit()` returns a `dask.delayed` object and `wait()` computes it, as in Prefect.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import signal
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures as cf
from contextlib import contextmanager
from typing import Any

from flowrun.engine import calls, events, interrupts
from flowrun.engine import state as states
from flowrun.engine.executors import base

_NAMES = {
    "threads": "threads",
    "threading": "threads",
    "processes": "processes",
    "multiprocessing": "processes",
    "sync": "synchronous",
    "synchronous": "synchronous",
    "single-threaded": "synchronous",
}


def task_key(task_name: str = "", task_index: int | None = None, **_: Any) -> str | None:
    """A Dask key naming the task (from a submit's `extra_context`), as Prefect makes it."""
    if not task_name:
        return None
    middle = "" if task_index is None else f"{task_index}-"
    return f"{task_name}-{middle}{uuid.uuid4().hex}"


def _ignore_sigint() -> None:
    # A pool process leaves Ctrl-C to its parent, which stops the run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _KeepResults:
    """A Dask callback keeping each computed key's value, so that `wait()` on a
    delayed object whose inputs an earlier `wait()` computed does not run them again."""

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}

    def callback(self) -> Any:
        from dask.callbacks import Callback  # noqa: PLC0415

        def start(dsk: Any) -> None:
            for key in set(dsk) & set(self.values):
                dsk[key] = self.values[key]

        def posttask(key: Any, value: Any, *_: Any) -> None:
            self.values[key] = value

        return Callback(start=start, posttask=posttask)  # type: ignore[no-untyped-call]


def _close(pool: cf.Executor, *, interrupted: bool) -> None:
    """Wait for the pool's work; after an exception (Ctrl-C) interrupt it instead, as in
    Prefect: a thread pool's running threads get KeyboardInterrupt (raised at their next
    Python instruction), a process pool's workers are not waited for."""
    if not interrupted:
        pool.shutdown(wait=True, cancel_futures=True)
        return
    pool.shutdown(wait=False, cancel_futures=True)
    if isinstance(pool, cf.ThreadPoolExecutor):
        for thread in list(pool._threads):
            if thread.ident is not None and thread.is_alive():
                interrupts.raise_in(thread.ident, KeyboardInterrupt)


class LocalDaskExecutor(base.Executor):
    def __init__(self, scheduler: str = "threads", **kwargs: Any) -> None:
        super().__init__()
        self.scheduler = self._normalize_scheduler(scheduler)
        self.dask_config = kwargs
        self._pool: cf.Executor | None = None
        self._kept = _KeepResults()

    @staticmethod
    def _normalize_scheduler(scheduler: str) -> str:
        found = _NAMES.get(scheduler.lower())
        if found is None:
            raise ValueError(
                f"LocalDaskExecutor: unknown scheduler {scheduler!r}; "
                f"use one of {sorted(set(_NAMES))}"
            )
        return found

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pool": None, "_kept": _KeepResults()}

    @contextmanager
    def start(self) -> Iterator[None]:
        import dask.config  # noqa: PLC0415 - `import flowrun` stays light
        from dask.system import CPU_COUNT  # noqa: PLC0415

        with dask.config.set(**self.dask_config):
            workers = dask.config.get("num_workers", None) or CPU_COUNT
            if self.scheduler == "threads":
                self._pool = cf.ThreadPoolExecutor(workers)
            elif self.scheduler == "processes":
                # Spawned, as Dask's own pools are: a fork of this threaded process could
                # inherit a held lock and hang.
                spawn = multiprocessing.get_context("spawn")
                self._pool = cf.ProcessPoolExecutor(
                    workers, mp_context=spawn, initializer=_ignore_sigint
                )
            interrupted = False
            try:
                yield
            except BaseException:
                interrupted = True
                raise
            finally:
                self._kept = _KeepResults()
                pool, self._pool = self._pool, None
                if pool is not None:
                    _close(pool, interrupted=interrupted)

    def _compute(self, work: Any) -> Any:
        from dask.base import compute  # noqa: PLC0415

        options: dict[str, Any] = {"chunksize": 1} if self.scheduler == "processes" else {}
        (value,) = compute(  # type: ignore[no-untyped-call]
            work, scheduler=self.scheduler, pool=self._pool, optimize_graph=False, **options
        )
        return value

    def _run_task(
        self, call: calls.TaskCall, state: Any, upstream: list[Any], reduced: list[Any]
    ) -> states.State:
        from dask.delayed import delayed  # noqa: PLC0415

        if self.scheduler == "processes":
            # A callback into this process cannot run in a worker process.
            call = dataclasses.replace(call, on_event=None, on_done=None)
        # Arguments ride in a partial so that Dask does not traverse (and rebuild) them.
        run = functools.partial(calls.run_task, call, state, upstream, reduced)
        result: states.State = self._compute(delayed(run, pure=False)())
        return result

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        extra_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        from dask.delayed import delayed  # noqa: PLC0415

        key = task_key(**(extra_context or {}))
        named = {} if key is None else {"dask_key_name": key}
        return delayed(fn, pure=False)(*args, **kwargs, **named)

    def wait(self, futures: Any) -> Any:
        with self._kept.callback():
            return self._compute(futures)

    @contextmanager
    def session(
        self, *, run_id: str, on_task_state: events.OnTaskState | None
    ) -> Iterator[base.Session]:
        yield from base.in_process_session(
            self._run_task, run_id=run_id, on_task_state=on_task_state
        )
