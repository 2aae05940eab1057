"""Helpers for engine tests (a module of its own so worker processes can import it too)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from flowrun.executors import DaskExecutor, LocalExecutor, SynchronousExecutor


def poll(condition: Callable[[], Any], timeout: float = 30.0, step: float = 0.02) -> Any:
    """Wait until `condition()` is truthy (returned), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def make_executor(request: pytest.FixtureRequest, name: str) -> Any:
    """An executor by name; "dask-batched" runs mapped children two to a Dask task."""
    if name == "local":
        return LocalExecutor()
    if name == "sync":
        return SynchronousExecutor()
    cluster = request.getfixturevalue("dask_cluster")
    batch = 2 if name == "dask-batched" else None
    return DaskExecutor(address=cluster.scheduler_address, map_batch_size=batch)
