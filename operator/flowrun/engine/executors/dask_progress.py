"""Worker side: what a batch of mapped children leaves behind when its client dies.

A batch is published by its client once every child reported (`dask_publish`). When the
client is killed (kill -9) while a batch runs, the scheduler drops the client's futures
and the worker marks the running batch `cancelled`; the batch's own result is then thrown
away. So the batch watches for that: once dropped, it publishes the children it finished
itself, as `<prefix><slug>[first-last]` (the same form as a whole batch, so that a resuming
client finds them as it finds batches), and runs none of the children it had not started
(they end Cancelled: the resuming client runs them). Nothing is published while the
client lives, so a batch costs nothing more than before.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any

import distributed

from flowrun.engine import state as states

log = logging.getLogger("flowrun.engine")

# How often a batch's watcher looks whether its client's future was dropped: the children
# that finished are published within about this long, even while a slow child still runs.
TICK = 0.2


class Progress:
    """The children a batch finished, published if the batch is dropped (`name` is
    `<prefix><slug>`; None: nothing is published, a dropped batch only stops)."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.worker: Any = None
        self.key: Any = None
        try:
            self.worker = distributed.get_worker()
            self.key = self.worker.get_current_task()
        except ValueError:
            pass  # not on a worker (a test that calls the batch directly)
        self.lock = threading.Lock()
        self.finished: list[tuple[int, states.State]] = []  # (map index, final), in order
        self.done = threading.Event()
        self.watcher: threading.Thread | None = None

    def dropped(self) -> bool:
        """The scheduler released this batch: its client is gone (or cancelled it)."""
        if self.worker is None or self.key is None:
            return False
        found = self.worker.state.tasks.get(self.key)
        return found is not None and found.state == "cancelled"

    def add(self, index: int | None, final: states.State) -> None:
        if self.name is None or index is None:
            return
        with self.lock:
            self.finished.append((index, final))
        if self.watcher is None and self.key is not None:
            # The watcher needs the worker's context (`get_worker`, `get_client`).
            context = contextvars.copy_context()
            self.watcher = threading.Thread(
                target=context.run, args=(self._watch,), name="flowrun-batch-watch", daemon=True
            )
            self.watcher.start()

    def _watch(self) -> None:
        while not self.done.wait(TICK):
            if self.dropped():
                self.publish()
                return

    def publish(self) -> None:
        """Publish the finished children not published yet, each contiguous run of them
        under one name (a batch runs its children in order: one run, unless some ended
        Cancelled in between)."""
        with self.lock:
            finished, self.finished = self.finished, []
        if not finished or self.name is None:
            return
        runs: list[list[tuple[int, states.State]]] = []
        for index, final in finished:
            if not runs or runs[-1][-1][0] != index - 1:
                runs.append([])
            runs[-1].append((index, final))
        names = [f"{self.name}[{run[0][0]}-{run[-1][0]}]" for run in runs]
        try:
            client: Any = distributed.get_client()
            # Kept on this worker, beside the batch's other inputs and results.
            futures = client.scatter(
                [[f for _, f in run] for run in runs],
                hash=False,
                direct=True,
                workers=[self.worker.address],
            )
            client.publish_dataset(dict(zip(names, futures, strict=True)), override=True)
        except Exception:  # the scheduler is gone too: these children run again
            log.warning("could not publish the finished children %s", names, exc_info=True)
            return
        log.info("published %s: the batch's client left while it ran", names)

    def close(self) -> None:
        self.done.set()
        if self.watcher is not None:
            self.watcher.join()
