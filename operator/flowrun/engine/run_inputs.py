"""What one flow run is given, normalised once, and the one owner of its cancel.

`RunInputs` replaces the dozen keyword arguments that used to travel from
`run_until_finished` through `FlowRunner.run_pass` into `FlowPass`: tasks are named by
slug, defaults are filled in, and it is frozen, so a pass can not change what the next
pass is given except through `with_task_states`.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flowrun.engine import caching, events
from flowrun.engine import state as states
from flowrun.engine.executors.base import Session
from flowrun.engine.taskstates import slug_of


class Cancellation:
    """The only caller of `Session.cancel()` for a run: at most once, when `event` is set.

    The caller owns the Event; setting it means: start nothing more, interrupt what runs,
    end the flow Cancelled. In-process executors run tasks in the runner's own thread, so
    a watcher thread (see `watching`) reacts while that thread waits on a task.
    """

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event
        self._lock = threading.Lock()
        self._fired = False

    def is_set(self) -> bool:
        return self.event is not None and self.event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early (True) if the run is cancelled."""
        if self.event is None:
            threading.Event().wait(timeout)
            return False
        return self.event.wait(timeout)

    def check(self, session: Session) -> bool:
        """Whether the run is cancelled; cancels `session` the first time it is."""
        if not self.is_set():
            return False
        with self._lock:
            fire, self._fired = not self._fired, True
        if fire:
            session.cancel()
        return True

    @contextmanager
    def watching(self, session: Session) -> Iterator[None]:
        if self.event is None:
            yield
            return
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if self.is_set():
                    self.check(session)
                    return
                done.wait(0.05)

        watcher = threading.Thread(target=watch, name="flowrun-cancel", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """A flow run's inputs, every task named by its slug."""

    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    task_states: Mapping[str, states.State] = dataclasses.field(default_factory=dict)
    start_tasks: tuple[str, ...] = ()
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    task_contexts: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    cache_store: caching.CacheStore = caching.PROCESS_CACHE
    cancel: Cancellation = dataclasses.field(default_factory=Cancellation)
    on_task_state: events.OnTaskState | None = None
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def of(
        cls,
        *,
        parameters: Mapping[str, Any] | None = None,
        task_states: Mapping[Any, states.State] | None = None,
        start_tasks: Iterable[Any] | None = None,
        context: Mapping[str, Any] | None = None,
        task_contexts: Mapping[Any, Mapping[str, Any]] | None = None,
        cancel: threading.Event | None = None,
        cache_store: caching.CacheStore | None = None,
        on_task_state: events.OnTaskState | None = None,
    ) -> RunInputs:
        """From the public keyword arguments (tasks given as Task objects or slugs)."""
        return cls(
            parameters=dict(parameters or {}),
            task_states={slug_of(k): v for k, v in (task_states or {}).items()},
            start_tasks=tuple(slug_of(t) for t in start_tasks or ()),
            context=dict(context or {}),
            task_contexts={slug_of(k): v for k, v in (task_contexts or {}).items()},
            cache_store=cache_store or caching.PROCESS_CACHE,
            cancel=Cancellation(cancel),
            on_task_state=on_task_state,
        )

    def with_task_states(self, found: Mapping[str, states.State]) -> RunInputs:
        return dataclasses.replace(self, task_states=dict(found))
