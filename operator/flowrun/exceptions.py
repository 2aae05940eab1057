"""`flowrun.exceptions`, as `prefect.exceptions`."""

from flowrun.engine.signals import FlowrunSignal, TaskTimeout


class FlowrunException(Exception):
    """Base class of flowrun's (non-signal) errors."""


PrefectException = FlowrunException
PrefectSignal = FlowrunSignal
TaskTimeoutSignal = TaskTimeout

__all__ = [
    "FlowrunException",
    "FlowrunSignal",
    "PrefectException",
    "PrefectSignal",
    "TaskTimeout",
    "TaskTimeoutSignal",
]
