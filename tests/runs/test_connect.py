"""The run's Client reaches a scheduler that becomes reachable late, within startupTimeoutSeconds
(a scheduler Pod Ready before its Service routes to it), and gives up after it."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import distributed
import pytest

from flowrun.api import models
from flowrun.runs import execute, plan


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runner(address: str, startup: int) -> execute.Runner:
    spec = models.FlowRunSpec.model_validate(
        {
            "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [1, 2]}]},
            "returnTasks": ["a"],
            "executor": {
                "type": "Dask",
                "dask": {
                    "cluster": "External",
                    "address": address,
                    "startupTimeoutSeconds": startup,
                },
            },
        }
    )
    return execute.Runner(
        plan.make_plan(spec, secret_values={}),
        address=address,
        cancel=threading.Event(),
        on_event=lambda _: None,
        on_graph=lambda _: None,
        known_tasks={},
        publish_prefix="connect-test",
    )


def test_a_scheduler_that_comes_up_after_one_attempt_is_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(execute, "CONNECT_SECONDS", 1.0)
    port = free_port()
    clusters: list[Any] = []

    def late() -> None:
        time.sleep(3)  # three one-second attempts fail first
        clusters.append(
            distributed.LocalCluster(
                n_workers=1, processes=False, scheduler_port=port, dashboard_address=":0"
            )
        )

    starter = threading.Thread(target=late)
    starter.start()
    try:
        result = runner(f"tcp://127.0.0.1:{port}", startup=60).run()
    finally:
        starter.join()
        for cluster in clusters:
            cluster.close()
    assert (result.state, result.results) == ("Success", {"a": 3})


def test_no_scheduler_within_startup_timeout_fails_with_distributed_s_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(execute, "CONNECT_SECONDS", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(OSError, match="Timed out trying to connect"):
        runner(address, startup=2).run()
