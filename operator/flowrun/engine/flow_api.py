"""Prefect 1.x's Flow conveniences on top of FlowBase: copy, update, validate, slugs,
get_tasks by tags or type, and iteration in topological order."""

from __future__ import annotations

import collections
import copy
from collections.abc import Iterable, Iterator
from typing import Any

from flowrun.engine.flow_base import FlowBase
from flowrun.engine.task import Task


class FlowAPI(FlowBase):
    def __iter__(self) -> Iterator[Task]:
        yield from self.sorted_tasks()

    @property
    def slugs(self) -> dict[Task, str]:
        """`{task: slug}` for every task."""
        return {t: t.slug or "" for t in self._tasks}

    def copy(self) -> Any:
        """A flow with the same tasks and edges that can be changed on its own."""
        new = copy.copy(self)
        new.constants = collections.defaultdict(
            dict, {t: dict(c) for t, c in self.constants.items()}
        )
        new._tasks = dict(self._tasks)
        new._slugs = dict(self._slugs)
        new._up = {t: list(es) for t, es in self._up.items()}
        new._down = {t: list(es) for t, es in self._down.items()}
        new._name_counts = collections.Counter(self._name_counts)
        new._reference = None if self._reference is None else list(self._reference)
        new._sorted = None
        new._tokens = []
        return new

    def update(self, flow: FlowBase, merge_reference_tasks: bool = False, **_: Any) -> None:
        """Add the tasks, edges and constants of `flow` to this flow."""
        for task in flow.sorted_tasks():
            self.add_task(task)
        for edge in flow.edges:
            if edge not in self.edges:
                self.add_edge(edge.upstream, edge.downstream, edge.key, edge.mapped, edge.flattened)
        for task, values in flow.constants.items():
            self.constants[task].update(values)
        if merge_reference_tasks:
            self.set_reference_tasks(self.reference_tasks() | flow.reference_tasks())

    def validate(self) -> None:
        """Raise ValueError if an edge or a reference task is outside the flow, or on a cycle."""
        tasks = set(self._tasks)
        if any(e.upstream not in tasks or e.downstream not in tasks for e in self.edges):
            raise ValueError("Some edges refer to tasks not contained in this flow.")
        self._sorted = None
        self.sorted_tasks()
        if any(t not in tasks for t in self.reference_tasks()):
            raise ValueError("Some reference tasks are not contained in this flow.")

    def get_tasks(
        self,
        name: str | None = None,
        slug: str | None = None,
        tags: Iterable[str] | None = None,
        task_type: type | None = None,
    ) -> list[Task]:
        """The tasks matching every criterion given."""
        wanted = None if tags is None else set(tags)
        return [
            t
            for t in super().get_tasks(name=name, slug=slug)
            if (wanted is None or wanted <= set(t.tags))
            and (task_type is None or isinstance(t, task_type))
        ]
