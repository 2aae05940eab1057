"""`case`: a block of tasks that runs only when a task's result equals a value."""

from __future__ import annotations

from typing import Any

from flowrun.engine.context import context
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.task import Task
from flowrun.tasks.control_flow.conditional import CompareValue


class case:
    """`with case(cond, "a"): ...` — like `if cond == "a":` around a part of a flow.

    The tasks made in the block get a CompareValue check upstream (the block's root
    tasks); when it SKIPs they are Skipped, and so is what follows them.
    """

    def __init__(self, task: Task, value: Any) -> None:
        if isinstance(value, Task):
            raise TypeError("`value` cannot be a task")
        self.task = task
        self.value = value
        self._tasks: set[Task] = set()
        self._flow: FlowBase | None = None
        self._outer: list[Any] = []

    def add_task(self, task: Task, flow: FlowBase) -> None:
        if self._flow is None:
            self._flow = flow
        elif self._flow is not flow:
            raise ValueError("Multiple flows cannot be used with the same case statement")
        self._tasks.add(task)

    def __enter__(self) -> None:
        self._outer.append(context.get("case"))
        context.update(case=self)

    def __exit__(self, *exc: object) -> None:
        context.update(case=self._outer.pop())
        if not self._tasks or self._flow is None:
            return
        flow = self._flow
        cond = CompareValue(self.value, name=f"case({self.value})").bind(value=self.task, flow=flow)
        for child in list(self._tasks):
            if not self._tasks.intersection(flow.upstream_tasks(child)):
                child.set_upstream(cond, flow=flow)
