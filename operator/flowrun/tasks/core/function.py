"""`flowrun.tasks.core.function`, as `prefect.tasks.core.function`."""

from flowrun.engine.task import FunctionTask

__all__ = ["FunctionTask"]
