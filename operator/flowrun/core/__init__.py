"""`flowrun.core`, as `prefect.core`: Flow, Task, Parameter and Edge."""

from flowrun.core.edge import Edge
from flowrun.core.flow import Flow
from flowrun.core.parameter import DateTimeParameter, Parameter
from flowrun.core.task import Task

__all__ = ["DateTimeParameter", "Edge", "Flow", "Parameter", "Task"]
