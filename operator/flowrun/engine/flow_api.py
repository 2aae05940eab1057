"""Prefect 1.x's Flow conveniences on top of FlowBase: copy, update, replace, validate,
slugs, equality, get_tasks by tags or type, and iteration in topological order."""

from __future__ import annotations

import collections
import copy
from collections.abc import Iterable, Iterator
from typing import Any

from flowrun.engine.edges import Edge
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.task import Task, as_task


class FlowAPI(FlowBase):
    def __iter__(self) -> Iterator[Task]:
        yield from self.sorted_tasks()

    def __eq__(self, other: object) -> bool:
        """Same class, name, tasks, edges and reference tasks (as Prefect's)."""
        if type(self) is not type(other) or not isinstance(other, FlowBase):
            return NotImplemented
        mine = (self.name, self.tasks, self.edges, self.reference_tasks())
        return mine == (other.name, other.tasks, other.edges, other.reference_tasks())

    __hash__ = object.__hash__  # flows stay usable as keys: identity, as before

    def all_upstream_edges(self) -> dict[Task, set[Edge[Task]]]:
        return {t: set(self._up[t]) for t in self._tasks}

    def all_downstream_edges(self) -> dict[Task, set[Edge[Task]]]:
        return {t: set(self._down[t]) for t in self._tasks}

    def replace(self, old: Task, new: Any, validate: bool = True) -> None:
        """Put `new` (a Task, or a value made into one) in the place of `old`: its edges,
        constants and reference-task role move to `new`."""
        if old not in self._tasks:
            raise ValueError(f"Task {old} was not found in Flow {self}")
        new = as_task(new, self)
        affected = [*self._up[old], *self._down[old]]
        constants = self.constants.pop(old, {})
        reference = self._reference
        self._remove(old)
        self.add_task(new)
        for edge in affected:
            up = new if edge.upstream is old else edge.upstream
            down = new if edge.downstream is old else edge.downstream
            if self.is_constant(up) and edge.key is not None and not edge.mapped:
                # A value in place of a task becomes a constant argument, as in Prefect.
                self.constants[down][edge.key] = getattr(up, "value", None)
                continue
            self.add_edge(up, down, key=edge.key, mapped=edge.mapped, flattened=edge.flattened)
        if constants:
            self.constants[new].update(constants)
        if reference:
            self._reference = [new if t is old else t for t in reference]
        if validate:
            self.validate()

    def _remove(self, task: Task) -> None:
        for edge in self._up.pop(task):
            self._down[edge.upstream].remove(edge)
        for edge in self._down.pop(task):
            self._up[edge.downstream].remove(edge)
        del self._tasks[task]
        self._slugs.pop(task.slug or "", None)
        self._sorted = None

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

    def update(
        self,
        flow: FlowBase,
        merge_parameters: bool = False,
        validate: bool | None = None,
        merge_reference_tasks: bool = False,
    ) -> None:
        """Add the tasks, edges and constants of `flow` to this flow; with
        `merge_parameters`, its parameters replace this flow's of the same name."""
        if merge_parameters:
            theirs = {p.name: p for p in flow.parameters()}
            for mine in self.parameters():
                if mine.name in theirs and theirs[mine.name] is not mine:
                    self.replace(mine, theirs[mine.name], validate=False)
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
