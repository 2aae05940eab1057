"""DaskExecutor: runs TaskCalls on a `distributed` cluster, results staying on the workers.

Downstream tasks receive upstream futures, so data moves worker to worker. The client
side of a run is `dask_session.DaskSession`, the worker side `dask_worker`. Only these
modules import `distributed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import distributed

from flowrun.engine import events
from flowrun.engine.executors.dask_api import DaskSubmitAPI
from flowrun.engine.executors.dask_session import DaskSession
from flowrun.engine.refs import resolve

__all__ = ["DaskExecutor", "DaskSession"]


class DaskExecutor(DaskSubmitAPI):
    """Run on a distributed cluster: an existing one (`address`) or one it creates.

    >>> DaskExecutor(address="tcp://scheduler:8786")                  # doctest: +SKIP
    >>> DaskExecutor(cluster_kwargs={"n_workers": 2})                 # doctest: +SKIP

    >>> DaskExecutor(client=my_client)                                # doctest: +SKIP

    With `client=`, the executor uses that `distributed.Client` (e.g. one that looked up
    published futures to resume from, which must belong to the client that submits) and
    leaves it open: its owner closes it.

    A task that times out or is cancelled while stuck in a blocking call (`time.sleep`, a
    socket read) ends TimedOut or Cancelled at once; its thread is abandoned and keeps
    running on the worker until the call returns. With `restart_stuck_workers=True`, the
    executor then restarts that worker process (through its nanny) to free it. Other tasks
    running on that worker are lost with it and Dask runs them again elsewhere, as after
    any worker failure, so use it where tasks may run twice.

    With `publish_prefix="run-1/"`, each finished task's result future is published as the
    dataset `run-1/<slug>` (a batch of mapped children as `run-1/<slug>[first-last]`), so a
    later client can resume from it (`dask_resume.published_states`).
    """

    def __init__(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        address: str | None = None,
        cluster_class: Callable[..., Any] | str | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        adapt_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        publish_prefix: str | None = None,
        *,
        client: Any | None = None,
        restart_stuck_workers: bool = False,
        map_batch_size: int | None = None,
        debug: bool | None = None,
        performance_report_path: str | None = None,
        disable_cancellation_event: bool = False,
        watch_worker_status: bool | None = None,
    ) -> None:
        super().__init__()
        if address is not None and (cluster_class is not None or cluster_kwargs):
            raise ValueError("Give either an address or a cluster_class/cluster_kwargs, not both.")
        if client is not None and (
            address is not None or cluster_class is not None or cluster_kwargs or client_kwargs
        ):
            raise ValueError(
                "Give either client= (an existing distributed.Client) or where to connect "
                "(address, cluster_class, cluster_kwargs, client_kwargs), not both."
            )
        self.given_client = client
        self.restart_stuck_workers = restart_stuck_workers
        self.map_batch_size = map_batch_size
        self.address = address
        # As in Prefect: without an address, the cluster class is resolved now and a
        # LocalCluster is quiet unless `debug=True`.
        self.cluster_class: Callable[..., Any] | None = None
        self.cluster_kwargs: dict[str, Any] | None = None
        self.adapt_kwargs: dict[str, Any] | None = None
        if address is None and client is None:
            factory = cluster_class or distributed.LocalCluster
            if isinstance(factory, str):
                # "package.module.Class" (Prefect's form) or "package.module:Class"
                factory = resolve(factory if ":" in factory else ":".join(factory.rsplit(".", 1)))
            self.cluster_class = factory
            self.cluster_kwargs = dict(cluster_kwargs or {})
            if self.cluster_class is distributed.LocalCluster:
                quiet = logging.WARNING if debug else logging.CRITICAL
                self.cluster_kwargs.setdefault("silence_logs", quiet)
            self.adapt_kwargs = {}
        if adapt_kwargs is not None:
            self.adapt_kwargs = dict(adapt_kwargs)
        self.client_kwargs = {"set_as_default": False, **(client_kwargs or {})}
        self.publish_prefix = publish_prefix
        self.performance_report_path = performance_report_path
        self.disable_cancellation_event = disable_cancellation_event
        self.watch_worker_status = watch_worker_status
        self.client: Any | None = None
        self._init_submit_api()

    @contextmanager
    def start(self) -> Iterator[Any]:
        if self.client is not None:
            # Already started by the caller (e.g. to fetch published futures): reuse it.
            yield self.client
            return
        if self.given_client is not None:
            self.client = self.given_client
            try:
                yield self.client
            finally:
                self.client = None
            return
        with (
            self._cluster() as address,
            distributed.Client(address, **self.client_kwargs) as c,  # type: ignore[no-untyped-call]
        ):
            self.client = c
            try:
                with self._started():
                    yield c
            finally:
                self.client = None

    @contextmanager
    def _cluster(self) -> Iterator[Any]:
        """The address to connect to: the one given, or a cluster made for this run."""
        if self.address is not None:
            self.logger.info("Connecting to an existing Dask cluster at %s", self.address)
            yield self.address
            return
        factory: Any = self.cluster_class
        self.logger.info(
            "Creating a new Dask cluster with `%s.%s`...", factory.__module__, factory.__qualname__
        )
        cluster = factory(**(self.cluster_kwargs or {}))
        try:
            if getattr(cluster, "dashboard_link", None):
                self.logger.info("The Dask dashboard is available at %s", cluster.dashboard_link)
            if self.adapt_kwargs:
                cluster.adapt(**self.adapt_kwargs)
            yield cluster
        finally:
            cluster.close()

    def _client(self) -> Any:
        if self.client is None:
            raise RuntimeError("DaskExecutor is not started: use `with executor.start():`")
        return self.client

    @contextmanager
    def session(
        self, *, run_id: str, on_task_state: events.OnTaskState | None
    ) -> Iterator[DaskSession]:
        session = DaskSession(
            self._client(),
            run_id=run_id,
            on_task_state=on_task_state,
            publish_prefix=self.publish_prefix,
            restart_stuck_workers=self.restart_stuck_workers,
            map_batch_size=self.map_batch_size,
        )
        try:
            yield session
        finally:
            session.close()
