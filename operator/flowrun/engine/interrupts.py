"""Stopping task code that is already running: timeouts and cancellation.

Task code runs in a task thread (pooled) while the runner's thread waits for it, until the
task's deadline or the run's cancel. Then the task thread is interrupted: a Python thread
cannot be killed, but it can be made to raise an exception at its next bytecode
(`PyThreadState_SetAsyncExc`), which works in every thread, Dask worker threads included.
A thread stuck in a blocking call (a long `time.sleep`, a socket read) only sees that
exception when the call returns; if it has not stopped `ABANDON_GRACE` seconds after the
interrupt, it is abandoned: the runner goes on with TimedOut or Cancelled, nothing waits
for the thread, and it is logged and counted (`abandoned_threads()`, `stuck_threads()`).
So neither a timeout nor a cancel ever waits on stuck code.

The task thread runs in a copy of the caller's context (contextvars), so `flowrun.context`
and Dask's `get_worker()` work in task code as they would in the caller's thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from queue import SimpleQueue
from typing import Any

from flowrun.engine import signals

log = logging.getLogger("flowrun.engine")

# Seconds an interrupted task thread gets to stop before it is abandoned.
ABANDON_GRACE = 0.5
# Idle task threads kept for reuse; more are let go.
MAX_IDLE = 32

# Which threads are running task code now: thread id -> (job, run scope).
# Process-wide on purpose: a canceller has only the run's scope to go by.
_lock = threading.Lock()
_active: dict[int, tuple[_Job, str | None]] = {}
# Jobs being waited for, by run scope, so that a cancel wakes their waiters.
_waiting: dict[str | None, set[_Job]] = {}
# Runs cancelled so far, so a task that starts after the cancel stops at once.
_cancelled: set[str] = set()
_idle: list[_TaskThread] = []
_abandoned_total = 0
_stuck: set[int] = set()
# Called (in the waiting thread) with a job's label and scope when its thread is abandoned.
abandon_hooks: list[Callable[[str, str | None], None]] = []
# What else task code expects of its thread (Dask's per-thread task key, ...): each is
# called in the waiting thread and returns a context manager (or None) that the task
# thread enters around the call.
thread_carriers: list[Callable[[], AbstractContextManager[Any] | None]] = []


def raise_in(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )


class _Job:
    """One call of task code, handed to a task thread."""

    __slots__ = (
        "carried", "context", "done", "error", "fn", "inputs", "scope", "state", "value", "wake",
    )  # fmt: skip

    def __init__(
        self, fn: Callable[[Mapping[str, Any]], Any], inputs: Mapping[str, Any], scope: str | None
    ) -> None:
        self.fn = fn
        self.inputs = inputs
        self.scope = scope
        self.context = contextvars.copy_context()
        self.carried = [c for c in (carry() for carry in thread_carriers) if c is not None]
        self.done = threading.Event()  # set by the task thread when the call returned
        self.wake = threading.Event()  # set on done and on cancel: the waiter looks again
        self.state = "running"  # -> "done" | "abandoned", under _lock
        self.value: Any = None
        self.error: BaseException | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class _TaskThread:
    def __init__(self) -> None:
        self.inbox: SimpleQueue[_Job] = SimpleQueue()
        self.thread = threading.Thread(target=self._main, name="flowrun-task", daemon=True)
        self.thread.start()

    @property
    def ident(self) -> int:
        return self.thread.ident or 0

    def _main(self) -> None:
        while True:
            job = self.inbox.get()
            started = time.monotonic()
            # Suppressed: a late interrupt that fired after the task code had returned.
            with contextlib.suppress(BaseException):
                self._serve(job)
            if not _settle(self, job, started):
                return

    def _serve(self, job: _Job) -> None:
        try:
            try:
                with _lock:
                    _active[self.ident] = (job, job.scope)
                    if job.scope is not None and job.scope in _cancelled:
                        raise signals.TaskCancelled()
                with contextlib.ExitStack() as stack:
                    for carried in job.carried:
                        stack.enter_context(carried)
                    job.value = job.context.run(job.fn, job.inputs)
            finally:
                with _lock:
                    _active.pop(self.ident, None)
        except BaseException as exc:
            # Everything, SystemExit and KeyboardInterrupt too: the caller decides.
            job.error = exc


def _settle(worker: _TaskThread, job: _Job, started: float) -> bool:
    """Hand the outcome over; whether this thread serves again (not once abandoned)."""
    with _lock:
        abandoned = job.state == "abandoned"
        job.state = "done"
        if abandoned:
            _stuck.discard(worker.ident)
        keep = not abandoned and len(_idle) < MAX_IDLE
        if keep:
            _idle.append(worker)
    job.done.set()
    job.wake.set()
    if abandoned:
        log.info("an abandoned task thread returned after %.1f s", time.monotonic() - started)
    return keep


def _start(job: _Job) -> _TaskThread:
    with _lock:
        if job.scope is not None and job.scope in _cancelled:
            raise signals.TaskCancelled()
        _waiting.setdefault(job.scope, set()).add(job)
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _TaskThread()
    worker.inbox.put(job)
    return worker


def _abandon(job: _Job, worker: _TaskThread, label: str, why: str) -> bool:
    """Give up on a thread that did not stop; False if it finished meanwhile."""
    global _abandoned_total  # noqa: PLW0603 - the process-wide count is the point
    with _lock:
        if job.state != "running":
            return False
        job.state = "abandoned"
        _abandoned_total += 1
        _stuck.add(worker.ident)
    log.warning(
        "task %s: %s, but its thread is stuck in a blocking call; abandoned it (it runs on "
        "until that call returns, nothing waits for it)",
        label,
        why,
    )
    for hook in list(abandon_hooks):
        try:
            hook(label, job.scope)
        except Exception:
            log.exception("abandon hook failed")
    return True


def call_guarded(
    fn: Callable[[Mapping[str, Any]], Any],
    inputs: Mapping[str, Any],
    *,
    timeout: float | None,
    scope: str | None,
    label: str = "task",
) -> Any:
    """Call `fn(inputs)` in a task thread and return (or raise) what it did.

    Raises TaskTimeout once `timeout` seconds passed and TaskCancelled once run `scope` is
    cancelled, within `ABANDON_GRACE` s, whether or not the task code stops.
    """
    job = _Job(fn, inputs, scope)
    worker = _start(job)
    try:
        woke = job.wake.wait(timeout)
        if job.done.is_set():
            return job.outcome()
        reason: type[BaseException]
        if woke:  # by a cancel, which interrupted the task thread already
            reason, why = signals.TaskCancelled, "cancelled"
        else:
            reason, why = signals.TaskTimeout, f"timed out after {timeout} s"
            _interrupt(worker, job, reason)
        if job.done.wait(ABANDON_GRACE) or not _abandon(job, worker, label, why):
            job.done.wait()
            return job.outcome()
        raise reason()
    finally:
        with _lock:
            found = _waiting.get(scope)
            if found is not None:
                found.discard(job)
                if not found:
                    del _waiting[scope]


def _interrupt(worker: _TaskThread, job: _Job, exc_type: type[BaseException]) -> None:
    with _lock:
        entry = _active.get(worker.ident)
        if entry is not None and entry[0] is job:
            raise_in(worker.ident, exc_type)


def cancel_scope(scope: str) -> int:
    """Raise TaskCancelled in every thread running task code of run `scope`, and wake the
    threads waiting for them; returns how many task threads were interrupted."""
    with _lock:
        _cancelled.add(scope)
        hits = [tid for tid, (_, s) in _active.items() if s == scope]
        for tid in hits:
            raise_in(tid, signals.TaskCancelled)
        for job in _waiting.get(scope, ()):
            job.wake.set()
    return len(hits)


def is_cancelled(scope: str | None) -> bool:
    """Whether run `scope` was cancelled in this process (see `cancel_scope`)."""
    with _lock:
        return scope is not None and scope in _cancelled


def count_abandoned_elsewhere() -> None:
    """Count a thread that a Dask worker abandoned for a run this process drives."""
    global _abandoned_total  # noqa: PLW0603 - the process-wide count is the point
    with _lock:
        _abandoned_total += 1


def abandoned_threads() -> int:
    """How many task threads were abandoned since this process started (a counter): its
    own, and those Dask workers reported for the runs it drove (export it as a metric)."""
    with _lock:
        return _abandoned_total


def stuck_threads() -> int:
    """How many abandoned task threads are still running now (a gauge)."""
    with _lock:
        return len(_stuck)
