"""Executors: LocalExecutor, LocalDaskExecutor, SynchronousExecutor and DaskExecutor.

DaskExecutor is imported on first use, so `import flowrun` never loads `distributed`.
"""

from typing import TYPE_CHECKING, Any

from flowrun.engine.executors.base import Executor
from flowrun.engine.executors.local import LocalExecutor
from flowrun.engine.executors.local_dask import LocalDaskExecutor
from flowrun.engine.executors.synchronous import SynchronousExecutor

if TYPE_CHECKING:
    from flowrun.engine.executors.dask import DaskExecutor

__all__ = ["DaskExecutor", "Executor", "LocalDaskExecutor", "LocalExecutor", "SynchronousExecutor"]


def __getattr__(name: str) -> Any:
    if name == "DaskExecutor":
        from flowrun.engine.executors.dask import DaskExecutor  # noqa: PLC0415 - distributed

        return DaskExecutor
    raise AttributeError(name)
