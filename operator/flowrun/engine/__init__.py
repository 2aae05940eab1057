"""The flowrun engine: states, signals, tasks, flows, triggers, runners and executors.

Pure Python with no Kubernetes in sight; `distributed` is imported only by the Dask
executor. Public names mirror Prefect Core 1.x.
"""

from flowrun.engine import (
    cache_validators,
    operators,  # noqa: F401 - registers `t + 1` & co. on every Task
    signals,
    state,
    triggers,
)
from flowrun.engine.flow_runner import FlowRunner
from flowrun.engine.looping import run_until_finished
from flowrun.engine.task_runner import TaskRunner

__all__ = [
    "FlowRunner",
    "TaskRunner",
    "cache_validators",
    "run_until_finished",
    "signals",
    "state",
    "triggers",
]
