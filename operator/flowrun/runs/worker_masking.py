"""Secret values masked in the Dask workers' own output too, as in the runner's.

A task runs on a Dask worker: in a worker *process* (`flowrun run`'s LocalCluster, the worker
Pods of a Kubernetes cluster, an External cluster's workers) what it prints, logs or raises goes
to that process's output, which the runner's masking (`masked_streams`) cannot reach. The run's
client registers `MaskWorkerOutput` with the run's masker: each worker, also one that joins or
is restarted later, masks its `sys.stdout` and `sys.stderr` with it for as long as the plugin is
registered. A worker of the run's own cluster (the worker Pods of its DaskCluster, a
LocalCluster's worker processes) masks its file descriptors 1 and 2 too (`masked_fds`: C code,
subprocesses); an External cluster's workers outlive the run and serve others, so only their
Python-level streams are masked, and only while the run lasts. A worker in the client's own
process (a LocalCluster of threads: the runner's, or the operator's in-process one) is left
alone: the runner masks its whole process already, and the operator's output is not one run's.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from flowrun.runs.masked_fds import mask_process
from flowrun.runs.masked_streams import mask_std_streams
from flowrun.runs.secrets import Masker

logger = logging.getLogger(__name__)

PROCESS = uuid.uuid4().hex  # this process: an unpickled plugin compares it with its client's


class MaskWorkerOutput(WorkerPlugin):
    def __init__(self, masker: Masker, *, whole_process: bool = False) -> None:
        self.masker = masker
        self.whole_process = whole_process
        self.client_process = PROCESS
        self._restore: Callable[[], None] | None = None

    def setup(self, worker: Any) -> None:
        if self.client_process == PROCESS:
            return
        mask = mask_process if self.whole_process else mask_std_streams
        self._restore = mask(self.masker)

    def teardown(self, worker: Any) -> None:
        if self._restore is not None:
            self._restore()


@contextlib.contextmanager
def masked_workers(client: Any, masker: Masker, *, shared: bool) -> Iterator[None]:
    """The workers of `client`'s cluster mask the run's secret values while this lasts; on a
    `shared` cluster (External: its workers outlive the run) the masker is taken off after."""
    if not masker:
        yield
        return
    name = f"flowrun-mask-output-{uuid.uuid4().hex[:12]}"
    try:
        client.register_plugin(MaskWorkerOutput(masker, whole_process=not shared), name=name)
    except Exception as exc:  # a scheduler that refuses plugins: the run still runs, unmasked
        logger.warning("secret values are not masked in the Dask workers' own output: %s", exc)
        shared = False
    try:
        yield
    finally:
        if shared:
            with contextlib.suppress(Exception):  # a lost scheduler: nothing left to undo
                client.unregister_worker_plugin(name)
