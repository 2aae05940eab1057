"""Flow: a graph of tasks that can run itself and be written as data.

The structure and building API are `flow_base.FlowBase`; this module adds what needs the
runners and the graph format above it, so nothing below imports back up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrun.engine import flow_context, graph_build, looping
from flowrun.engine import state as states
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.graph_model import FlowGraph

__all__ = ["Flow"]


class Flow(FlowBase):
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

    def run(
        self, parameters: Mapping[str, Any] | None = None, executor: Any = None, **kwargs: Any
    ) -> states.State:
        """Run to the end (retries included) and return the flow state with all task states.

        Parameter values can be given as `parameters=` or as keyword arguments.
        """
        if flow_context.current_flow() is self:
            raise RuntimeError(
                "Flow.run() can not be called inside its own `with Flow(...)` block."
            )
        if "return_tasks" in kwargs:
            raise ValueError("Flow.run() returns every task state; return_tasks is not accepted.")
        names = {p.name for p in self.parameters()}
        given = dict(parameters or {})
        given.update({k: kwargs.pop(k) for k in list(kwargs) if k in names})
        unknown = sorted(set(given) - names)
        if unknown:
            raise ValueError(
                f"Flow.run received the following unexpected parameters: {', '.join(unknown)}"
            )
        missing = sorted(p.name for p in self.parameters() if p.required and p.name not in given)
        if missing:
            raise ValueError(
                f"Flow.run did not receive the following required parameters: {', '.join(missing)}"
            )
        return looping.run_until_finished(
            self, parameters=given, executor=executor or self.executor, **kwargs
        )

    def to_graph(self) -> FlowGraph:
        return graph_build.from_flow(self)
