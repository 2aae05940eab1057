"""Prefect's `submit()` / `wait()` side of DaskExecutor, for code that drives an executor
by hand (flowrun's runners use `DaskExecutor.session()` instead).

What Prefect 1.4.1 does, kept: futures named from `extra_context` (`task_name`,
`task_index`), Dask resources from `dask-resource:NAME=AMOUNT` task tags, a
`distributed.Event` that stops queued submissions from starting once the executor exits
(on a cluster it did not create, unless `disable_cancellation_event=True`; on exit it waits
for those running), worker add/remove events logged at debug level with
`watch_worker_status=True` (off by default here), and the text of a
`performance_report_path`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import distributed

from flowrun.engine.executors import base
from flowrun.engine.executors.local_dask import task_key


def _maybe_run(event_name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `fn` only while the executor's event is set (a queued task started after the
    executor exited does nothing)."""
    try:
        event = distributed.Event(event_name, client=distributed.get_client())  # type: ignore[no-untyped-call]
        should_run = event.is_set()  # type: ignore[no-untyped-call]
    except Exception:
        should_run = True  # the event is gone or the scheduler is unreachable: run
    if should_run:
        return fn(*args, **kwargs)
    return None


class DaskSubmitAPI(base.Executor):
    """Mixed into DaskExecutor: needs `client`, `address`, `adapt_kwargs`."""

    client: Any
    address: str | None
    adapt_kwargs: Any
    disable_cancellation_event: bool
    watch_worker_status: bool | None
    performance_report_path: str | None

    def _init_submit_api(self) -> None:
        self._futures: weakref.WeakSet[Any] | None = None
        self._should_run_event: Any = None
        self._watch_dask_events_task: Any = None

    def __getstate__(self) -> dict[str, Any]:
        gone = ("client", "_futures", "_should_run_event", "_watch_dask_events_task")
        return {**self.__dict__, **dict.fromkeys(gone)}

    @contextlib.contextmanager
    def _started(self) -> Iterator[None]:
        """Around the time the client is open: the cancellation event, the worker
        watch and the performance report."""
        report = (
            distributed.performance_report(self.performance_report_path)  # type: ignore[no-untyped-call]
            if self.performance_report_path
            else contextlib.nullcontext()
        )
        with report:
            self._pre_start_yield()
            try:
                yield
            finally:
                self._post_start_yield()

    def _pre_start_yield(self) -> None:
        inproc = str(self.client.scheduler.address).startswith("inproc")
        if (self.address is not None or inproc) and not self.disable_cancellation_event:
            self._futures = weakref.WeakSet()
            self._should_run_event = distributed.Event(  # type: ignore[no-untyped-call]
                f"flowrun-{uuid.uuid4().hex}", client=self.client
            )
            self._should_run_event.set()
        # Off unless asked for (Prefect: on unless adaptive); each watch adds a scheduler
        # subscription, and flowrun's runners do not need it.
        if self.watch_worker_status:
            self._watch_dask_events_task = asyncio.run_coroutine_threadsafe(
                self._watch_dask_events(), self.client.loop.asyncio_loop
            )

    def _post_start_yield(self) -> None:
        if self._watch_dask_events_task is not None:
            self._watch_dask_events_task.cancel()
            self._watch_dask_events_task = None
        if self._should_run_event is not None:
            with contextlib.suppress(Exception):
                self._should_run_event.clear()
            with contextlib.suppress(Exception):
                running = [f for f in list(self._futures or ()) if not f.done()]
                if running:
                    self.logger.info(
                        "Stopping executor, waiting for %d active tasks to complete",
                        len(running),
                    )
                    distributed.wait(running)  # type: ignore[no-untyped-call]
        self._should_run_event = None
        self._futures = None

    async def on_worker_status_changed(self, op: str, message: dict[str, Any]) -> None:
        if op == "add":
            for worker in message.get("workers", ()):
                self.logger.debug("Worker %s added", worker)
        elif op == "remove":
            self.logger.debug("Worker %s removed", message)

    async def _watch_dask_events(self) -> None:
        from distributed.core import rpc  # noqa: PLC0415

        scheduler = comm = None
        try:
            scheduler = rpc(  # type: ignore[no-untyped-call]
                self.client.scheduler.address,
                connection_args=self.client.security.get_connection_args("client"),
            )
            comm = await asyncio.shield(scheduler.live_comm())  # type: ignore[no-untyped-call]
            await comm.write({"op": "subscribe_worker_status"})
            await comm.read()
            while True:
                try:
                    messages = await comm.read()
                except OSError:
                    break
                for op, message in messages:
                    await self.on_worker_status_changed(op, message)
        except asyncio.CancelledError:
            pass
        except Exception:
            self.logger.debug("Failure while watching dask worker events", exc_info=True)
        finally:
            if comm is not None:
                with contextlib.suppress(Exception):
                    await comm.close()
            if scheduler is not None:
                await scheduler.close_rpc()  # type: ignore[no-untyped-call]

    def _prep_dask_kwargs(self, extra_context: dict[str, Any] | None = None) -> dict[str, Any]:
        extra = extra_context or {}
        kwargs: dict[str, Any] = {"pure": False}
        key = task_key(**extra)
        if key is not None:
            kwargs["key"] = key
        resources = {}
        for tag in extra.get("task_tags", ()):
            if tag.lower().startswith("dask-resource"):
                prefix, amount = tag.split("=")
                resources[prefix.split(":")[1]] = float(amount)
        if resources:
            kwargs["resources"] = resources
        return kwargs

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        extra_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        if self.client is None:
            raise ValueError("This executor has not been started: use `with executor.start():`")
        kwargs.update(self._prep_dask_kwargs(extra_context))
        if self._should_run_event is None:
            return self.client.submit(fn, *args, **kwargs)
        future = self.client.submit(_maybe_run, self._should_run_event.name, fn, *args, **kwargs)
        if self._futures is not None:
            self._futures.add(future)
        return future

    def wait(self, futures: Any) -> Any:
        if self.client is None:
            raise ValueError("This executor has not been started: use `with executor.start():`")
        return self.client.gather(futures)

    @property
    def performance_report(self) -> str:
        """The HTML of the performance report written to `performance_report_path`."""
        if self.performance_report_path is None:
            self.logger.warning("Executor was not configured to generate performance report")
            return ""
        try:
            return Path(self.performance_report_path).read_text()
        except OSError:
            self.logger.warning(
                "Failed to read the performance report at %r", self.performance_report_path
            )
            return ""
