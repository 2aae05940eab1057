"""Stopping task code that is already running: timeouts and cancellation.

A Python thread cannot be killed, but it can be made to raise an exception at its next
bytecode (`PyThreadState_SetAsyncExc`). This works in every thread, including Dask worker
threads where Prefect 1.x's timeouts only mark a task and let it run on. A thread is only
interrupted while it is registered as running task code, so the exception always lands
inside the TaskRunner's guard. A blocking C call (a long `time.sleep`) is interrupted
when it returns.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Mapping
from typing import Any

from flowrun.engine import signals

# Which threads are running task code now: thread id -> (invocation token, run scope).
# Process-wide on purpose: a timer or a canceller has only a thread id to go by.
_lock = threading.Lock()
_active: dict[int, tuple[object, str | None]] = {}
# Runs cancelled so far, so a task that registers after the cancel stops at once.
_cancelled: set[str] = set()


def _raise_in(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )


def interrupt(thread_id: int, token: object, exc_type: type[BaseException]) -> bool:
    with _lock:
        entry = _active.get(thread_id)
        if entry is None or entry[0] is not token:
            return False
        _raise_in(thread_id, exc_type)
        return True


def cancel_scope(scope: str) -> int:
    """Raise TaskCancelled in every thread running task code of run `scope`."""
    with _lock:
        _cancelled.add(scope)
        hits = [tid for tid, (_, s) in _active.items() if s == scope]
        for tid in hits:
            _raise_in(tid, signals.TaskCancelled)
    return len(hits)


def call_guarded(
    fn: Callable[[Mapping[str, Any]], Any],
    inputs: Mapping[str, Any],
    *,
    timeout: float | None,
    scope: str | None,
) -> Any:
    """Call `fn(inputs)`; raise TaskTimeout after `timeout` s and TaskCancelled on cancel."""
    token = object()
    thread_id = threading.get_ident()
    timer = None
    try:
        with _lock:
            if scope is not None and scope in _cancelled:
                raise signals.TaskCancelled()
            _active[thread_id] = (token, scope)
        if timeout is not None:
            timer = threading.Timer(timeout, interrupt, (thread_id, token, signals.TaskTimeout))
            timer.daemon = True
            timer.start()
        return fn(inputs)
    finally:
        if timer is not None:
            timer.cancel()
        with _lock:
            _active.pop(thread_id, None)


def is_cancelled(scope: str | None) -> bool:
    """Whether run `scope` was cancelled in this process (see `cancel_scope`)."""
    with _lock:
        return scope is not None and scope in _cancelled
