"""FlowBase: a graph of tasks and the API that builds it (functional `with` or imperative).

`flow.Flow` adds running and the data form; the runners below it need only this.

Graph queries are linear-time (adjacency lists, Kahn's sort, a cached order), so a
10,000-task flow builds and sorts in well under a second.
"""

from __future__ import annotations

import collections
import itertools
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextvars import Token
from typing import Any, Self

from flowrun.engine import context as contexts
from flowrun.engine import flow_context
from flowrun.engine import state as states
from flowrun.engine.context import context
from flowrun.engine.edges import Annotated, Edge
from flowrun.engine.flow_context import UNUSED_TRACKER
from flowrun.engine.logs import runner_logger
from flowrun.engine.parameter import Parameter
from flowrun.engine.task import Constant, Task, as_task, contains_task

FlowStateHandler = Callable[[Any, states.State, states.State], "states.State | None"]
TerminalStateHandler = Callable[[Any, states.State, list[states.State]], "states.State | None"]
TaskEdge = Edge[Task]


class FlowBase:
    """A named graph of tasks (see `flow.Flow`, which adds `run()` and `to_graph()`)."""

    def __init__(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        name: str,
        tasks: Iterable[Task] | None = None,
        edges: Iterable[TaskEdge] | None = None,
        reference_tasks: Iterable[Task] | None = None,
        state_handlers: Iterable[FlowStateHandler] | None = None,
        on_failure: Callable[[Any, states.State], None] | None = None,
        executor: Any = None,
        terminal_state_handler: TerminalStateHandler | None = None,
        validate: bool | None = None,
        result: Any = None,
    ) -> None:
        if not name:
            raise ValueError("A name must be provided for the flow.")
        if state_handlers is not None and not isinstance(state_handlers, Iterable):
            raise TypeError("state_handlers should be iterable.")
        self.name = name
        self.logger = runner_logger(f"flowrun.{name}")
        self.executor = executor
        self.result = result
        self.state_handlers: list[FlowStateHandler] = list(state_handlers or ())
        if on_failure is not None:
            self.state_handlers.append(_failure_callback(on_failure))
        self.terminal_state_handler = terminal_state_handler
        self.constants: dict[Task, dict[str, Any]] = collections.defaultdict(dict)
        self._tasks: dict[Task, None] = {}
        self._slugs: dict[str, Task] = {}
        self._up: dict[Task, list[TaskEdge]] = {}
        self._down: dict[Task, list[TaskEdge]] = {}
        self._name_counts: collections.Counter[str] = collections.Counter()
        self._reference: list[Task] | None = None
        self._sorted: tuple[Task, ...] | None = None
        self._tokens: list[tuple[Token[Any], Token[Any]]] = []
        for t in tasks or ():
            self.add_task(t)
        for e in edges or ():
            self.add_edge(
                e.upstream, e.downstream, key=e.key, mapped=e.mapped, flattened=e.flattened
            )
        if reference_tasks is not None:
            self.set_reference_tasks(reference_tasks)

    def __repr__(self) -> str:
        return f"<Flow: {self.name}>"

    def __enter__(self) -> Self:
        # `flowrun.context.flow` is this flow inside the block, and context values set
        # in the block end with it, as in Prefect.
        values = {"flow": self, UNUSED_TRACKER: set()}
        self._tokens.append((flow_context.enter(self), contexts.push(values)))
        return self

    def __exit__(self, *exc: object) -> None:
        created: set[Task] = context.get(UNUSED_TRACKER) or set()
        builder, values = self._tokens.pop()
        contexts.pop(values)
        flow_context.leave(builder)
        unused = created - set(self._tasks)
        if unused:
            warnings.warn(
                f"Tasks were created but not added to the flow: {unused}. Tasks made "
                "inside a `with Flow(...)` block join the flow when called (or passed to "
                "another task) or through `flow.add_task`.",
                stacklevel=2,
            )

    # -- structure ------------------------------------------------------------------------
    @property
    def tasks(self) -> set[Task]:
        return set(self._tasks)

    @property
    def edges(self) -> set[TaskEdge]:
        return {e for es in self._up.values() for e in es}

    def add_task(self, task: Task) -> Task:
        if not isinstance(task, Task):
            raise TypeError(f"Tasks must be Task instances (got {task!r}).")
        if task in self._tasks:
            return task
        # A slug this flow or another made up is made anew on a clash (Prefect keeps
        # slugs per flow; here a task carries its slug, which FlowRuns name tasks by).
        if task.slug is None or (task.slug in self._slugs and getattr(task, "_auto_slug", False)):
            task.slug = self._new_slug(task)
            task._auto_slug = True  # type: ignore[attr-defined]
        if task.slug in self._slugs:
            raise ValueError(f'A task with the slug "{task.slug}" already exists in this flow.')
        self._tasks[task] = None
        self._slugs[task.slug] = task
        self._up[task] = []
        self._down[task] = []
        self._sorted = None
        # Inside `with case(...)` (flowrun.tasks.control_flow) a new task joins the case,
        # as in Prefect; parameters and constants stay root tasks.
        active_case = context.get("case")
        if active_case is not None and not isinstance(task, Parameter | Constant):
            active_case.add_task(task, self)
        return task

    def _new_slug(self, task: Task) -> str:
        """`name-tags-count`, as Prefect makes them."""
        prefix = "-".join([task.name, *sorted(task.tags)])
        while True:
            self._name_counts[prefix] += 1
            slug = f"{prefix}-{self._name_counts[prefix]}"
            if slug not in self._slugs:
                return slug

    def add_edge(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        upstream_task: Task,
        downstream_task: Task,
        key: str | None = None,
        mapped: bool = False,
        flattened: bool = False,
        validate: bool | None = None,
    ) -> TaskEdge:
        if isinstance(downstream_task, Parameter):
            raise ValueError(
                "Parameters must be root tasks and can not have upstream dependencies."
            )
        if mapped and context.get("mapped", False):
            raise ValueError(
                "Cannot set `mapped=True` when running from inside a mapped context "
                "(a function given to `apply_map` is mapped as a whole)"
            )
        self.add_task(upstream_task)
        self.add_task(downstream_task)
        if key is not None:
            self._check_key(downstream_task, key)
        if upstream_task is downstream_task or self._reaches(downstream_task, upstream_task):
            raise ValueError(
                f"Adding the edge {upstream_task.slug} -> {downstream_task.slug} "
                "would create a cycle."
            )
        edge: TaskEdge = Edge(
            upstream_task, downstream_task, key=key, mapped=mapped, flattened=flattened
        )
        if edge not in self._up[downstream_task]:
            self._up[downstream_task].append(edge)
            self._down[upstream_task].append(edge)
            self._sorted = None
        return edge

    def _check_key(self, task: Task, key: str) -> None:
        if any(e.key == key for e in self._up[task]) or key in self.constants.get(task, {}):
            raise ValueError(
                f"Argument {key!r} of task {task.slug!r} has already been assigned in this "
                "flow (it has an upstream value); to call the task again with new "
                "arguments, call Task.copy() first."
            )
        params = task.signature().parameters
        if key not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise ValueError(f"Task {task.slug!r} has no argument {key!r}.")

    def _reaches(self, start: Task, goal: Task) -> bool:
        seen = {start}
        stack = [start]
        while stack:
            for edge in self._down[stack.pop()]:
                if edge.downstream is goal:
                    return True
                if edge.downstream not in seen:
                    seen.add(edge.downstream)
                    stack.append(edge.downstream)
        return False

    def set_dependencies(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        task: Task,
        upstream_tasks: Iterable[Any] | None = None,
        downstream_tasks: Iterable[Any] | None = None,
        keyword_tasks: Mapping[str, Any] | None = None,
        mapped: bool = False,
        validate: bool | None = None,
    ) -> None:
        self.add_task(task)
        for value in upstream_tasks or ():
            inner, edge_mapped, flat = _unwrap(value, mapped)
            self.add_edge(as_task(inner, self), task, mapped=edge_mapped, flattened=flat)
        for value in downstream_tasks or ():
            self.add_edge(task, as_task(value, self))
        for key, value in (keyword_tasks or {}).items():
            inner, edge_mapped, flat = _unwrap(value, mapped)
            if contains_task(inner) or edge_mapped or flat:
                self.add_edge(
                    as_task(inner, self), task, key=key, mapped=edge_mapped, flattened=flat
                )
            else:
                self._check_key(task, key)
                self.constants[task][key] = inner

    def chain(self, *tasks: Task, validate: bool | None = None) -> list[TaskEdge]:
        return [self.add_edge(up, down) for up, down in itertools.pairwise(tasks)]

    def get_tasks(self, name: str | None = None, slug: str | None = None) -> list[Task]:
        return [
            t
            for t in self._tasks
            if (name is None or t.name == name) and (slug is None or t.slug == slug)
        ]

    def task_by_slug(self, slug: str) -> Task:
        return self._slugs[slug]

    def _known(self, task: Task) -> Task:
        if task not in self._tasks:
            raise ValueError(f"Task {task} was not found in Flow {self}")
        return task

    def edges_to(self, task: Task) -> list[TaskEdge]:
        return list(self._up[self._known(task)])

    def edges_from(self, task: Task) -> list[TaskEdge]:
        return list(self._down[self._known(task)])

    def upstream_tasks(self, task: Task) -> set[Task]:
        return {e.upstream for e in self._up[self._known(task)]}

    def downstream_tasks(self, task: Task) -> set[Task]:
        return {e.downstream for e in self._down[self._known(task)]}

    def root_tasks(self) -> set[Task]:
        return {t for t in self._tasks if not self._up[t]}

    def terminal_tasks(self) -> set[Task]:
        return {t for t in self._tasks if not self._down[t]}

    def parameters(self) -> set[Parameter]:
        return {t for t in self._tasks if isinstance(t, Parameter)}

    def reference_tasks(self) -> set[Task]:
        # An empty choice falls back to the terminal tasks, as in Prefect.
        return set(self._reference) if self._reference else self.terminal_tasks()

    def set_reference_tasks(self, tasks: Iterable[Task]) -> None:
        chosen = list(tasks)
        missing = [t for t in chosen if t not in self._tasks]
        if missing:
            raise ValueError(f"Reference tasks must be part of the flow; not in it: {missing!r}")
        self._reference = chosen

    def sorted_tasks(self, root_tasks: Iterable[Task] | None = None) -> tuple[Task, ...]:
        """Tasks in a topological order, in O(V + E); ties keep insertion order. With
        `root_tasks`, only those and the tasks downstream of them."""
        if root_tasks:
            keep = self._downstream_of([self._known(t) for t in root_tasks])
            return tuple(t for t in self.sorted_tasks() if t in keep)
        if self._sorted is None:
            indegree = {t: len(self._up[t]) for t in self._tasks}
            ready = collections.deque(t for t, n in indegree.items() if n == 0)
            order: list[Task] = []
            while ready:
                t = ready.popleft()
                order.append(t)
                for edge in self._down[t]:
                    indegree[edge.downstream] -= 1
                    if indegree[edge.downstream] == 0:
                        ready.append(edge.downstream)
            if len(order) != len(self._tasks):
                raise ValueError("Flows must be acyclic.")
            self._sorted = tuple(order)
        return self._sorted

    def _downstream_of(self, roots: Iterable[Task]) -> set[Task]:
        seen = set(roots)
        stack = list(seen)
        while stack:
            for edge in self._down[stack.pop()]:
                if edge.downstream not in seen:
                    seen.add(edge.downstream)
                    stack.append(edge.downstream)
        return seen

    def is_constant(self, task: Task) -> bool:
        return type(task) is Constant


def _unwrap(value: Any, mapped: bool) -> tuple[Any, bool, bool]:
    if isinstance(value, Annotated):
        return value.value, mapped if value.mapped is None else value.mapped, value.flattened
    return value, mapped, False


def _failure_callback(fn: Callable[[Any, states.State], None]) -> FlowStateHandler:
    def on_failure(flow: Any, old: states.State, new: states.State) -> states.State | None:
        if new.is_failed():
            fn(flow, new)
        return None

    return on_failure
