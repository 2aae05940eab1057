"""flowrun: Prefect-Core-1.x-style flows, run locally or by the flowrun operator.

Port a Prefect 1.x flow by changing `prefect` to `flowrun` in its imports; what ports and
what does not is in docs/prefect-compat.md.
"""

from flowrun import executors, schedules, triggers
from flowrun.engine.context import context
from flowrun.engine.edges import flatten, mapped, unmapped
from flowrun.engine.flow import Flow
from flowrun.engine.parameter import Parameter
from flowrun.engine.task import Task, task
from flowrun.tasks.control_flow import case
from flowrun.utilities.tasks import apply_map, tags

__version__ = "0.1.0"

__all__ = [
    "Flow",
    "Parameter",
    "Task",
    "apply_map",
    "case",
    "context",
    "executors",
    "flatten",
    "mapped",
    "schedules",
    "tags",
    "task",
    "triggers",
    "unmapped",
]
