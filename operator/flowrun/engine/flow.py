"""Flow: a graph of tasks that can run itself and be written as data.

The structure and building API are `flow_base.FlowBase`; this module adds what needs the
runners and the graph format above it, so nothing below imports back up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrun.engine import flow_context, graph_build, running
from flowrun.engine import state as states
from flowrun.engine.flow_api import FlowAPI
from flowrun.engine.graph_model import FlowGraph

__all__ = ["Flow"]


class Flow(FlowAPI):
    """A named graph of tasks.

    >>> from flowrun import Flow, task
    >>> @task
    ... def inc(x):
    ...     return x + 1
    >>> with Flow("demo") as flow:
    ...     y = inc(inc(1))
    >>> flow.run().result[y].result
    3
    """

    def __init__(self, *args: Any, schedule: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schedule = schedule

    def run(
        self, parameters: Mapping[str, Any] | None = None, executor: Any = None, **kwargs: Any
    ) -> states.State:
        """Run to the end (retries included); the flow state's result is `{task: state}`
        for every task, results fetched. With a `schedule`, run once per scheduled time
        (`run_on_schedule=False`: once, now).

        Parameter values can be given as `parameters=` or as keyword arguments; also
        `executor=`, `context=`, `task_states=`, `runner_cls=`, `flow_run_name=`.
        """
        if flow_context.current_flow() is self:
            raise RuntimeError(
                "Don't call `flow.run()` from within a `Flow` context manager: "
                "call it after the `with Flow(...)` block."
            )
        return running.run_flow(self, parameters, executor, **kwargs)

    def to_graph(self) -> FlowGraph:
        return graph_build.from_flow(self)
