"""Timeouts stop the task's work on every executor, and count as failures for retries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine_helpers import poll

from flowrun import Flow, task
from flowrun.engine import run_until_finished
from flowrun.engine import state as s


def test_timeout_stops_the_work(executor: Any, tmp_path: Path) -> None:
    stopped = tmp_path / "stopped"

    @task(timeout=0.5)
    def forever() -> None:
        try:
            while True:
                time.sleep(0.01)
        finally:
            stopped.write_text("interrupted")

    with Flow("timeout") as flow:
        t = forever()
    state = flow.run(executor=executor)
    assert state.is_failed()
    assert type(state.result[t]) is s.TimedOut
    poll(stopped.exists)


def test_timed_out_tasks_are_retried(executor_ld: Any, tmp_path: Path) -> None:
    tries = tmp_path / "tries"

    @task(timeout=0.3, max_retries=1, retry_delay=0)
    def slow_once() -> str:
        tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
        if len(tries.read_text()) == 1:
            while True:
                time.sleep(0.01)
        return "second try"

    with Flow("timeout-retry") as flow:
        t = slow_once()
    state = run_until_finished(flow, executor=executor_ld)
    assert state.result[t].result == "second try"


def test_a_fast_task_is_not_affected(executor: Any) -> None:
    @task(timeout=30)
    def quick() -> int:
        return 1

    with Flow("fast") as flow:
        t = quick()
    assert flow.run(executor=executor).result[t].result == 1
