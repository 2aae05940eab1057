"""flowrun: Prefect-Core-1.x-style flows, run locally or by the flowrun operator.

Port a Prefect 1.x flow by changing `prefect` to `flowrun` in its imports.
"""

from flowrun import triggers
from flowrun.engine.context import context
from flowrun.engine.edges import flatten, mapped, unmapped
from flowrun.engine.flow import Flow
from flowrun.engine.task import Parameter, Task, task

__version__ = "0.1.0"

__all__ = [
    "Flow",
    "Parameter",
    "Task",
    "context",
    "flatten",
    "mapped",
    "task",
    "triggers",
    "unmapped",
]
