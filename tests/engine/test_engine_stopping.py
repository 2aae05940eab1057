"""Stop means stop: no task can end the process, and neither a timeout nor a cancel waits
for task code stuck in a blocking call, on every executor.

Nothing here times a run: a stuck task sleeps far longer than the bounded waits, and
writes a marker when its sleep returns, so "nothing waited for it" is a file that does
not exist yet when the run is over.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import poll

from flowrun import Flow, task, triggers
from flowrun.engine import interrupts, run_until_finished
from flowrun.engine import state as s
from flowrun.engine.events import TaskEvent
from flowrun.executors import LocalExecutor

STUCK_SECONDS = 60  # far beyond what stopping a run takes, even on a loaded machine


class Quit(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt."""


def _raise(kind: str) -> None:
    if kind == "exit":
        sys.exit(3)
    if kind == "interrupt":
        raise KeyboardInterrupt("stop")
    raise Quit("quit")


@pytest.mark.parametrize("kind", ["exit", "interrupt", "base"])
def test_a_task_ending_the_process_only_fails(executor: Any, kind: str) -> None:
    @task
    def leave() -> None:
        _raise(kind)

    @task(trigger=triggers.always_run)
    def after() -> str:
        return "still here"

    with Flow("leave") as flow:
        t = leave()
        a = after(upstream_tasks=[t])
    state = flow.run(executor=executor)
    failed = state.result[t]
    assert type(failed) is s.Failed
    assert {"exit": "SystemExit", "interrupt": "KeyboardInterrupt", "base": "Quit"}[kind] in str(
        failed.message
    )
    assert state.result[a].result == "still here"


@pytest.mark.parametrize("kind", ["exit", "interrupt"])
def test_a_handler_ending_the_process_only_fails(executor: Any, kind: str) -> None:
    def handler(task: Any, old: s.State, new: s.State) -> None:
        if new.is_running():
            _raise(kind)

    def flow_handler(flow: Any, old: s.State, new: s.State) -> None:
        if new.is_finished():
            _raise(kind)

    @task(state_handlers=[handler])
    def work() -> int:
        return 1

    with Flow("handlers", state_handlers=[flow_handler]) as flow:
        t = work()
    state = flow.run(executor=executor)
    assert type(state) is s.Failed
    assert type(state.result[t]) is s.Failed


def _stuck(marker: Path) -> None:
    try:
        time.sleep(STUCK_SECONDS)
    finally:
        marker.write_text("the blocking call returned")


def test_a_timeout_does_not_wait_for_a_blocking_call(executor: Any, tmp_path: Path) -> None:
    woke = tmp_path / "woke"

    @task(timeout=1)
    def sleepy() -> None:
        _stuck(woke)

    @task(trigger=triggers.always_run)
    def after() -> str:
        return "went on"

    with Flow("stuck-timeout") as flow:
        t = sleepy()
        a = after(upstream_tasks=[t])
    before = interrupts.abandoned_threads()
    state = flow.run(executor=executor)
    assert type(state.result[t]) is s.TimedOut
    assert state.result[a].result == "went on"
    assert not woke.exists()  # the run ended while the stuck call still slept
    # On Dask the worker abandons the thread and tells the client, which counts it.
    assert interrupts.abandoned_threads() == before + 1


def _run_in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(state=fn()), daemon=True)
    thread.start()
    return thread, out


def test_cancel_does_not_wait_for_a_blocking_call(executor: Any, tmp_path: Path) -> None:
    started, woke = tmp_path / "started", tmp_path / "woke"

    @task
    def sleepy() -> None:
        started.write_text("yes")
        _stuck(woke)

    with Flow("stuck-cancel") as flow:
        t = sleepy()
    cancel = threading.Event()
    thread, out = _run_in_thread(lambda: run_until_finished(flow, executor=executor, cancel=cancel))
    poll(started.exists, timeout=120)
    cancel.set()
    thread.join(STUCK_SECONDS / 2)
    assert not thread.is_alive(), "the run waited for the stuck task"
    assert type(out["state"]) is s.Cancelled
    assert type(out["state"].result[t]) is s.Cancelled
    assert not woke.exists()


def _last_events(seen: list[TaskEvent]) -> dict[tuple[str, int | None], str]:
    last: dict[tuple[str, int | None], str] = {}
    for event in seen:
        last[event.task, event.map_index] = event.state
    return last


def test_after_a_cancel_no_task_stays_running(executor: Any, tmp_path: Path) -> None:
    started = tmp_path / "started"
    seen: list[TaskEvent] = []

    @task
    def sleepy() -> None:
        started.write_text("yes")
        _stuck(tmp_path / "woke")

    with Flow("cancel-running") as flow:
        running = sleepy()
    cancel = threading.Event()
    thread, out = _run_in_thread(
        lambda: run_until_finished(
            flow, executor=executor, cancel=cancel, on_task_state=seen.append
        )
    )
    poll(started.exists, timeout=120)
    poll(lambda: any(e.state == "Running" for e in list(seen)), timeout=120)
    cancel.set()
    thread.join(STUCK_SECONDS / 2)
    assert not thread.is_alive()
    assert type(out["state"].result[running]) is s.Cancelled
    assert _last_events(seen) == {(running.slug, None): "Cancelled"}


def test_after_a_cancel_no_task_stays_retrying(executor: Any) -> None:
    seen: list[TaskEvent] = []

    @task(max_retries=3, retry_delay=300)
    def flaky() -> None:
        raise ValueError("try again later")

    @task(max_retries=3, retry_delay=300)
    def flaky_child(x: int) -> None:
        raise ValueError(f"try {x} again later")

    with Flow("cancel-retrying") as flow:
        retrying = flaky()
        children = flaky_child.map([1, 2])
    cancel = threading.Event()
    thread, out = _run_in_thread(
        lambda: run_until_finished(
            flow, executor=executor, cancel=cancel, on_task_state=seen.append
        )
    )
    poll(lambda: sum(e.state == "Retrying" for e in list(seen)) >= 3, timeout=120)
    cancel.set()
    thread.join(STUCK_SECONDS / 2)
    assert not thread.is_alive()
    final = out["state"].result
    assert type(out["state"]) is s.Cancelled
    assert type(final[retrying]) is s.Cancelled
    assert [type(c) for c in final[children].map_states] == [s.Cancelled, s.Cancelled]
    last = _last_events(seen)
    assert last[retrying.slug, None] == "Cancelled"
    assert [last[children.slug, i] for i in (0, 1)] == ["Cancelled", "Cancelled"]


def test_dask_can_restart_a_worker_left_with_a_stuck_thread() -> None:
    distributed = pytest.importorskip("distributed")
    from flowrun.executors import DaskExecutor  # noqa: PLC0415 - needs distributed

    @task(timeout=1)
    def sleepy() -> None:
        time.sleep(STUCK_SECONDS)

    with Flow("restart") as flow:
        t = sleepy()
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        [pid_before] = client.run(os.getpid).values()
        executor = DaskExecutor(client=client, restart_stuck_workers=True)
        state = flow.run(executor=executor)
        assert type(state.result[t]) is s.TimedOut

        def restarted() -> bool:
            try:
                pids = list(client.run(os.getpid).values())
            except Exception:
                return False  # the worker is going away right now
            return bool(pids) and pids != [pid_before]

        poll(restarted, timeout=120)


def test_a_cancelled_run_of_a_flow_scheduled_later_returns() -> None:
    """A run whose flow state says "not yet" must not spin once cancelled."""
    import datetime as dt  # noqa: PLC0415

    with Flow("later") as flow:
        task(lambda: 1)()
    cancel = threading.Event()
    cancel.set()
    later = s.Scheduled(start_time=s.now() + dt.timedelta(hours=1))
    thread, out = _run_in_thread(
        lambda: run_until_finished(flow, state=later, executor=LocalExecutor(), cancel=cancel)
    )
    thread.join(STUCK_SECONDS / 2)
    assert not thread.is_alive()
    assert not out["state"].is_running()
