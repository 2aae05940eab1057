"""Publishing results by name (`DaskExecutor(publish_prefix=...)`), so that a later client
(a restarted operator, see `dask_resume`) finds them and does not run those tasks again.

A task's result future is published as `<prefix><slug>`, an unbatched mapped child's as
`<prefix><slug>[i]`, and a batch of mapped children as `<prefix><slug>[first-last]` (its
value is the list of the children's final states) once every child of it has reported its
final record: one name per batch, not one per child. Publishing follows the final records
as they arrive, not the order in which the FlowRunner looks at them, so a finished task is
published even while the run waits on a task submitted before it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

# A published value that is one element of a batch's result: (PICKED, batch future, offset).
PICKED = "__flowrun_picked__"


def worth_publishing(record: Mapping[str, Any]) -> bool:
    """A final record (an event dict) that a resume can use: finished, not Cancelled (a
    cancelled task runs again anyway)."""
    return bool(record.get("is_finished")) and record.get("state") != "Cancelled"


class Publisher:
    """Which finished keys still have to be published; publishes them in one call."""

    def __init__(self, client: Any, prefix: str | None) -> None:
        self.client = client
        self.prefix = prefix
        self.lock = threading.Lock()
        self.reported: list[tuple[str, bool]] = []  # (key, finished), any thread appends
        self.seen: set[str] = set()
        self.batch_of: dict[str, str] = {}  # batched child's key -> its batch's key
        self.left: dict[str, int] = {}  # batch key -> children not reported yet
        self.batch_names: dict[str, str] = {}  # batch key -> "slug[first-last]"
        self.siblings: dict[str, tuple[str, int]] = {}  # sibling's key -> (batch, offset)

    def track_batch(self, key: str, name: str, children: list[str | None]) -> None:
        if self.prefix is None:
            return
        self.batch_names[key] = name
        self.left[key] = len(children)
        for child in children:
            self.batch_of[child or ""] = key

    def track_sibling(self, key: str, batch: str, offset: int) -> None:
        if self.prefix is not None:
            self.siblings[key] = (batch, offset)

    def report(self, key: str, finished: bool) -> None:
        """A TaskCall's final record arrived (called from the client's event loop)."""
        if self.prefix is None:
            return
        with self.lock:
            self.reported.append((key, finished))

    def flush(self, futures: Mapping[str, Any], name_of: Callable[[str], str]) -> None:
        """Publish what became ready (in the runner's thread: a blocking call)."""
        if self.prefix is None:
            return
        with self.lock:
            reported, self.reported = self.reported, []
        ready: dict[str, Any] = {}
        for key, finished in reported:
            if key in self.seen:
                continue
            self.seen.add(key)
            batch = self.batch_of.get(key)
            if batch is not None:
                self.left[batch] -= 1
                if self.left[batch] == 0:  # every child reported: the batch is (about) done
                    ready[self.prefix + self.batch_names[batch]] = futures[batch]
            elif finished and key in self.siblings:  # its place in its batch of siblings
                batch, offset = self.siblings[key]
                ready[self.prefix + name_of(key)] = (PICKED, futures[batch], offset)
            elif finished and key in futures:
                ready[self.prefix + name_of(key)] = futures[key]
        if ready:
            self.client.publish_dataset(ready, override=True)

    def running_batches(self) -> set[str]:
        """Batches running now, when their children are published: a cancel leaves them
        running, since the workers end their remaining children Cancelled (`cancel_scope`)
        within about a second, and the children that finished are then published."""
        if self.prefix is None:
            return set()
        running = {str(k) for keys in self.client.processing().values() for k in keys}
        return running & set(self.batch_names)
