"""`flowrun.tasks.control_flow`, as `prefect.tasks.control_flow`: case, switch, ifelse, merge,
FilterTask."""

from flowrun.tasks.control_flow.case import case
from flowrun.tasks.control_flow.conditional import CompareValue, Merge, ifelse, merge, switch
from flowrun.tasks.control_flow.filter import FilterTask

__all__ = ["CompareValue", "FilterTask", "Merge", "case", "ifelse", "merge", "switch"]
