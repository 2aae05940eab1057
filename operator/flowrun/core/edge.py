"""`flowrun.core.edge`, as `prefect.core.edge`."""

from flowrun.engine.edges import Edge
from flowrun.engine.task import Task

__all__ = ["Edge", "Task"]
