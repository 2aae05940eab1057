"""`flowrun.executors.local`, as `prefect.executors.local`."""

from flowrun.engine.executors.local import LocalExecutor

__all__ = ["LocalExecutor"]
