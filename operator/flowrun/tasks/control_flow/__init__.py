"""`flowrun.tasks.control_flow`, as `prefect.tasks.control_flow`: case, switch, ifelse, merge."""

from flowrun.tasks.control_flow.case import case
from flowrun.tasks.control_flow.conditional import CompareValue, Merge, ifelse, merge, switch

__all__ = ["CompareValue", "Merge", "case", "ifelse", "merge", "switch"]
