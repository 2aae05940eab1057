"""`flowrun.executors.dask`, as `prefect.executors.dask` (imports `distributed`)."""

from flowrun.engine.executors.dask import DaskExecutor

__all__ = ["DaskExecutor"]
