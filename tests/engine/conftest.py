"""Engine fixtures: executors to run each behaviour on, and one real Dask cluster.

The cluster (2 worker processes x 1 thread) is shared by the whole session: the machine
has two cores. Test modules are pickled by value so the worker processes need not import
them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest
from distributed import LocalCluster
from engine_helpers import make_executor

from flowrun.engine import caching


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    yield cluster
    cluster.close()


@pytest.fixture(autouse=True)
def _pickle_test_module_by_value(request: pytest.FixtureRequest) -> Iterator[None]:
    module = sys.modules.get(request.module.__name__)
    if module is not None:
        cloudpickle.register_pickle_by_value(module)
    return


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    caching.PROCESS_CACHE.clear()
    yield
    caching.PROCESS_CACHE.clear()


@pytest.fixture(params=["local", "sync", "dask"])
def executor(request: pytest.FixtureRequest) -> Any:
    """Each behaviour on every executor."""
    return make_executor(request, request.param)


@pytest.fixture(params=["local", "dask"])
def executor_ld(request: pytest.FixtureRequest) -> Any:
    """Local and Dask only, for the slower behaviours."""
    return make_executor(request, request.param)
