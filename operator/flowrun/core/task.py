"""`flowrun.core.task`, as `prefect.core.task`."""

from flowrun.engine.task import Task

__all__ = ["Task"]
