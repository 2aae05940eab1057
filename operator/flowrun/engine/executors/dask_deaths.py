"""Why a Dask worker died, as its nanny saw it, told to the run's client.

A worker over its memory limit is killed by the kernel's OOM killer inside its container (or
stopped by its nanny at 95% of the limit). The nanny, the container's main process, then
starts a new worker process in the same container: the container never ends, so the kubelet
reports no `OOMKilled` and the scheduler only knows that the worker is gone. The nanny knows
more: its worker process ended by SIGKILL while the memory cgroup's `oom_kill` counter grew.

`DeathWatch` (a NannyPlugin the client registers, so every nanny of the cluster, present and
future, runs it) logs one plain event per worker death under `TOPIC`; `Deaths` (client side)
keeps them by worker address, and `lost_message` says in words why a task's worker was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distributed.client import FutureCancelledError
from distributed.core import Status
from distributed.diagnostics.plugin import NannyPlugin
from tornado.ioloop import PeriodicCallback

from flowrun.engine import state as states

log = logging.getLogger("flowrun.engine")

TOPIC = "flowrun-worker-death"
SCHEDULER_LOST = "scheduler-connection-lost"  # distributed's reason for the futures it cancels
POLL_MS = 100
NAME = "flowrun-death-watch"
# How long a lost worker's nanny may take to say why it died (it looks every POLL_MS).
DEATH_GRACE = 10.0
CLOSING_TELL_SECONDS = 5.0  # a closing nanny's word to the scheduler, at most
# The memory cgroup's OOM kill counter, as the container sees it: cgroup v2, then v1.
OOM_COUNTERS = (
    Path("/sys/fs/cgroup/memory.events"),
    Path("/sys/fs/cgroup/memory/memory.oom_control"),
)


def oom_kills(files: tuple[Path, ...] = OOM_COUNTERS) -> int | None:
    """The `oom_kill` count of this process's memory cgroup; None where it cannot be read.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "memory.oom_control"
    >>> _ = f.write_text("oom_kill_disable 0\\nunder_oom 0\\noom_kill 3\\n")
    >>> oom_kills((f,))
    3
    """
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


class DeathWatch(NannyPlugin):
    """On a nanny: one event per worker process that ended while the nanny was running."""

    name = NAME

    def setup(self, nanny: Any) -> None:
        self.nanny = nanny
        self.watched: tuple[Any, str, int | None] | None = None  # process, address, kills
        callback = PeriodicCallback(self.tick, POLL_MS)
        nanny.periodic_callbacks[NAME] = callback
        callback.start()
        # Watch the running worker now: the client submits right after registering this, and
        # a task may kill its worker sooner than the first tick.
        self.tick()

    async def teardown(self, nanny: Any) -> None:
        callback = nanny.periodic_callbacks.pop(NAME, None)
        if callback is not None:
            callback.stop()
        if nanny.status != Status.closing:
            return  # the plugin replaced or removed, not the nanny going
        # The nanny closes (its Pod deleted or evicted, its node drained) and takes its worker
        # with it: said before the worker goes, so the client need not wait for another word.
        address = self.watched[1] if self.watched is not None else nanny.worker_address
        if address:
            event = {"address": address, "name": _name(nanny), "host": socket.gethostname()}
            with contextlib.suppress(Exception):  # a scheduler gone already: nobody to tell
                message = nanny.scheduler.log_event(topic=TOPIC, msg={**event, "closing": True})
                await asyncio.wait_for(message, CLOSING_TELL_SECONDS)

    def tick(self) -> None:
        nanny = self.nanny
        if self.watched is not None and self.watched[0].exitcode is not None:
            process, address, kills_before = self.watched
            self.watched = None
            nanny.log_event(TOPIC, death_event(nanny, process, address, kills_before))
        worker = getattr(nanny, "process", None)
        process = getattr(worker, "process", None)
        address = nanny.worker_address
        if self.watched is None and process is not None and process.exitcode is None and address:
            self.watched = (process, address, oom_kills())


def death_event(nanny: Any, process: Any, address: str, kills_before: int | None) -> dict[str, Any]:
    kills = oom_kills()
    code = process.exitcode
    memory = getattr(nanny, "memory_manager", None)
    by_nanny = getattr(memory, "_last_terminated_pid", None) == process.pid
    grew = kills is not None and kills_before is not None and kills > kills_before
    oom = code == -signal.SIGKILL and grew
    return {
        "address": address,
        "name": _name(nanny),
        "host": socket.gethostname(),  # on Kubernetes, the worker's Pod
        "exitcode": code,
        "oom": bool(oom),
        "memory_terminated": by_nanny,
        "memory_limit": getattr(memory, "memory_limit", None),
    }


def _name(nanny: Any) -> str | None:
    return str(nanny.name) if nanny.name is not None else None


class Deaths:
    """Client side: the deaths the nannies reported, by the address of the worker that died."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cond = threading.Condition()
        self.by_address: dict[str, Mapping[str, Any]] = {}
        client.subscribe_topic(TOPIC, self.on_event)
        watch(client)

    def close(self) -> None:
        self.client.unsubscribe_topic(TOPIC)

    def on_event(self, event: tuple[float, Any]) -> None:
        message = event[1]
        if isinstance(message, Mapping) and message.get("address"):
            with self.cond:
                self.by_address[message["address"]] = message
                self.cond.notify_all()

    def lost_state(
        self, worker: Any, task: Any, run_count: int, grace: float = DEATH_GRACE
    ) -> states.State:
        """What became of a task whose worker (a scheduler's `WorkerState`) died under it."""
        death = self.wait(worker.address, grace)
        return lost_state(lost_message(worker.name, worker.address, death), task, run_count)

    def wait(self, address: str, timeout: float) -> Mapping[str, Any] | None:
        """The death of the worker at `address`, waiting for its nanny's word up to `timeout`
        (the scheduler learns that a worker is gone before its nanny has looked why)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while address not in self.by_address:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.by_address[address]


def watch(client: Any) -> None:
    """Every nanny of the cluster, present and future, reports its worker's deaths."""
    try:
        client.register_plugin(DeathWatch(), name=NAME)
    except Exception as exc:  # e.g. workers without a nanny: losses are still reported
        log.debug("worker death watch not registered: %s", exc)


def scheduler_lost_message(client: Any) -> str:
    address = getattr(client.scheduler, "address", None) or "of this run"
    return (
        f"The Dask scheduler {address} was lost mid-run (its Pod or process ended): the "
        "tasks it ran and the results it held are gone."
    )


def lost_message(name: Any, address: str, death: Mapping[str, Any] | None) -> str:
    """Why the worker that ran a task is gone, naming it. On Kubernetes its name is its
    Deployment's (dask-kubernetes scales workers by it), the prefix of its Pod's name; its host,
    when its nanny said, is the Pod.

    >>> lost_message("w-1", "tcp://10.0.0.5:4000", None)[:60]
    'Dask worker w-1 (tcp://10.0.0.5:4000) was lost while running'
    >>> lost_message("w-1", "tcp://a:1", {"oom": True, "memory_limit": 419430400})[28:105]
    'was OOMKilled while running the task: it went over its memory limit (400 MiB)'
    """
    host = (death or {}).get("host")
    where = f"{address} on {host}" if host and host != name else address
    who = f"Dask worker {name} ({where})" if name not in (None, address) else f"Dask worker {where}"
    limit = _mib((death or {}).get("memory_limit"))
    if death is None:
        return f"{who} was lost while running the task (its Pod or process ended)."
    if death.get("closing"):
        return (
            f"{who} was lost while running the task: its nanny was stopped (its Pod deleted or "
            "evicted, or its node drained)."
        )
    if death.get("oom"):
        return (
            f"{who} was OOMKilled while running the task: it went over its memory limit"
            f"{limit} and the kernel killed it."
        )
    if death.get("memory_terminated"):
        return (
            f"{who} was OOMKilled while running the task: it went over 95% of its memory "
            f"limit{limit} and its nanny stopped it."
        )
    return f"{who} died while running the task ({_exit(death.get('exitcode'))})."


def _mib(limit: Any) -> str:
    return f" ({limit / 2**20:.0f} MiB)" if isinstance(limit, int | float) and limit > 0 else ""


def _exit(code: Any) -> str:
    if isinstance(code, int) and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def lost_state(message: str, task: Any, run_count: int) -> states.State:
    """A task whose worker was lost: Retrying while `max_retries` allows, as a task that
    raised would be (the scheduler's allowed-failures is 0, so it is not rerun by Dask
    behind the run's back); else Failed with why.

    >>> from flowrun.engine.task import Task
    >>> lost_state("gone", Task(name="t", max_retries=1), 1).message
    'Retrying Task (after attempt 1 of 2): gone'
    >>> type(lost_state("gone", Task(name="t", max_retries=1), 2)).__name__
    'Failed'
    """
    retries = getattr(task, "max_retries", 0) or 0
    if run_count > retries:
        return states.Failed(message)
    return states.Retrying(
        f"Retrying Task (after attempt {run_count} of {retries + 1}): {message}",
        start_time=states.now() + task.retry_delay,
        run_count=run_count,
    )


def attempt(state: Any) -> int:
    """Which run of its task a submission is (as `TaskRunner.run` counts it)."""
    if isinstance(state, states.Retrying):
        return state.run_count + 1
    count = state.context.get("task_run_count") if isinstance(state, states.State) else None
    return count if isinstance(count, int) and count > 0 else 1


def cancel_reason(future: Any) -> str | None:
    """Why Dask cancelled a future (e.g. `scheduler-connection-lost`), if it says."""
    try:
        future.result(timeout=5)
    except FutureCancelledError as exc:
        return exc.reason
    except Exception:  # not cancelled after all, or no word: not a lost scheduler
        return None
    return None
