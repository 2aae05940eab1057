"""Tasks: `Task` subclasses with `run()`, `@task` functions, parameters and constants.

A Task is a builder object that a Flow wires into a graph (the functional API copies and
binds it on each call). At run time a TaskRunner calls `run_with(inputs)`.
"""

from __future__ import annotations

import copy
import datetime as dt
import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flowrun.engine import cache_validators, flow_context, task_options, triggers
from flowrun.engine import state as states
from flowrun.engine.context import context
from flowrun.engine.edges import Annotated
from flowrun.engine.flow_context import FlowBuilder
from flowrun.engine.task_api import TaskAPI, check_run_signature, infer_nout, warn_reserved
from flowrun.engine.task_operators import TaskOperators
from flowrun.engine.task_options import batch_size as _batch_size
from flowrun.engine.task_options import delta as _delta
from flowrun.engine.task_options import seconds as _seconds

StateHandler = Callable[["Task", states.State, states.State], "states.State | None"]


class Task(TaskAPI, TaskOperators):
    """A unit of work. Subclass and define `run(self, ...)`, or use `@task`.

    >>> class Add(Task):
    ...     def run(self, x, y=1):
    ...         return x + y
    """

    def __init__(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        name: str | None = None,
        slug: str | None = None,
        tags: Iterable[str] | None = None,
        max_retries: int | None = 0,
        retry_delay: float | dt.timedelta | None = None,
        retry_on: type[BaseException] | Iterable[type[BaseException]] | None = None,
        timeout: float | dt.timedelta | None = None,
        trigger: triggers.Trigger | None = None,
        skip_on_upstream_skip: bool = True,
        cache_for: float | dt.timedelta | None = None,
        cache_validator: cache_validators.Validator | None = None,
        cache_key: str | None = None,
        state_handlers: Iterable[StateHandler] | None = None,
        on_failure: Callable[[Task, states.State], None] | None = None,
        nout: int | None = None,
        *,
        map_batch_size: int | None = None,
        checkpoint: bool | None = None,
        log_stdout: bool = False,
        result: Any = None,
        target: str | Callable[..., str] | None = None,
        task_run_name: str | Callable[..., str] | None = None,
    ) -> None:
        if type(self) is not Task:
            warn_reserved(self)
        if isinstance(tags, str):
            raise TypeError("Tags should be a set of tags, not a string.")
        self.name = name or type(self).__name__
        self.slug = slug
        # Tags of enclosing `flowrun.utilities.tasks.tags(...)` blocks are added.
        self.tags = frozenset(tags or ()) | frozenset(context.get("tags") or ())
        task_options.check_retry_delay(retry_delay, max_retries)
        self.max_retries = max_retries or 0
        self.retry_delay = _delta(retry_delay) or dt.timedelta(0)
        self.retry_on = task_options.retry_on(retry_on, max_retries)
        self.timeout = _seconds(timeout)
        self.trigger: triggers.Trigger = trigger or triggers.all_successful
        self.skip_on_upstream_skip = skip_on_upstream_skip
        task_options.warn_uncached(cache_for, cache_validator, cache_validators.never_use)
        self.cache_for = _delta(cache_for)
        default_validator = (
            cache_validators.duration_only if cache_for else cache_validators.never_use
        )
        self.cache_validator: cache_validators.Validator = cache_validator or default_validator
        self.cache_key = cache_key
        self.state_handlers: list[StateHandler] = list(state_handlers or ())
        if on_failure is not None:
            self.state_handlers.append(_failure_callback(on_failure))
        self.nout = nout if nout is not None else infer_nout(self._run_function())
        # How many mapped children one Dask task runs (DaskExecutor); None: adaptive.
        self.map_batch_size = _batch_size(map_batch_size)
        self._set_result_options(checkpoint, result, target)
        self.log_stdout = log_stdout
        self.task_run_name = task_run_name
        self.auto_generated = False
        self._check_signature()
        flow_context.track(self, None, constant=isinstance(self, Constant))

    def _set_result_options(self, checkpoint: bool | None, result: Any, target: Any) -> None:
        self.checkpoint = checkpoint
        self.target = target
        self.result = result
        if target is not None and result is not None:
            # As in Prefect: the target is where the result is written and looked for.
            self.result = result.copy()
            self.result.location = target

    def __repr__(self) -> str:
        return f"<Task: {self.name}>"

    # -- what runs ----------------------------------------------------------------------
    def run(self) -> Any:
        """The work; override in subclasses."""

    def signature(self) -> inspect.Signature:
        return inspect.signature(self.run)

    def run_with(self, inputs: Mapping[str, Any]) -> Any:
        return self.run(**inputs)

    def _run_function(self) -> Callable[..., Any]:
        return self.run

    def _check_signature(self) -> None:
        check_run_signature(self._run_function(), f"Task {self.name!r}")
        positional = [
            p.name for p in self.signature().parameters.values() if p.kind is p.POSITIONAL_ONLY
        ]
        if positional:
            raise TypeError(
                f"Task {self.name!r}: run() may not take positional-only arguments "
                f"{positional}: flowrun passes every argument by keyword."
            )

    # -- building flows -----------------------------------------------------------------
    def copy(self, **task_args: Any) -> Task:
        """A copy with some attributes changed.

        A slug given by the user is kept (FlowRuns name tasks by slug), unlike Prefect,
        which appends "-copy"; an automatic slug is reset."""
        _warn_if_wired(self)
        unknown = [key for key in task_args if not hasattr(self, key)]
        if unknown:
            raise AttributeError(f"{self} does not have {unknown[0]} as an attribute")
        new = copy.copy(self)
        new.state_handlers = list(self.state_handlers)
        for key, given in task_args.items():
            value = given
            if key in {"retry_delay", "cache_for"}:
                value = _delta(given)
            elif key == "timeout":
                value = _seconds(given)
            setattr(new, key, value)
        if "target" in task_args or "result" in task_args:
            new._set_result_options(new.checkpoint, new.result, new.target)
        if "slug" not in task_args and getattr(self, "_auto_slug", False):
            new.slug = None
        new.tags = self.tags | frozenset(new.tags) | frozenset(context.get("tags") or ())
        flow_context.track(new, self, constant=isinstance(new, Constant))
        return new

    def __call__(
        self,
        *args: Any,
        mapped: bool = False,
        task_args: Mapping[str, Any] | None = None,
        upstream_tasks: Iterable[Any] | None = None,
        flow: FlowBuilder | None = None,
        **kwargs: Any,
    ) -> Task:
        new = self.copy(**(task_args or {}))
        return new.bind(*args, mapped=mapped, upstream_tasks=upstream_tasks, flow=flow, **kwargs)

    def bind(
        self,
        *args: Any,
        mapped: bool = False,
        upstream_tasks: Iterable[Any] | None = None,
        flow: FlowBuilder | None = None,
        **kwargs: Any,
    ) -> Task:
        target = flow or flow_context.current_flow()
        if target is None:
            shown = self.name if hasattr(self, "fn") else f"{type(self).__name__}(...)"
            raise ValueError(
                f"Could not infer an active Flow context while creating edge to {self}. "
                "This often means you called a task outside a `with Flow(...)` block. "
                "If you're trying to run this task outside of a Flow context, you need "
                f"to call `{shown}.run(...)`"
            )
        # Tags of enclosing `tags(...)` blocks are added where the task is bound too.
        self.tags = self.tags | frozenset(context.get("tags") or ())
        bound = self.signature().bind(*args, **kwargs).arguments
        for name, param in self.signature().parameters.items():
            if param.kind is param.VAR_KEYWORD and name in bound:
                bound.update(bound.pop(name))
        target.set_dependencies(
            self, upstream_tasks=upstream_tasks, keyword_tasks=bound, mapped=mapped
        )
        return self

    def map(
        self,
        *args: Any,
        upstream_tasks: Iterable[Any] | None = None,
        flow: FlowBuilder | None = None,
        task_args: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run one child per element, zipping the mapped arguments to the shortest.

        A mapped task is not iterable (`nout` None) unless `task_args` says otherwise."""
        new = self.copy(**{"nout": None, **(task_args or {})})
        return new.bind(*args, mapped=True, upstream_tasks=upstream_tasks, flow=flow, **kwargs)

    def set_upstream(
        self,
        task: Any,
        key: str | None = None,
        mapped: bool = False,
        flow: FlowBuilder | None = None,
    ) -> Task:
        self._flow(flow).set_dependencies(
            self, upstream_tasks=[task], mapped=mapped
        ) if key is None else self._flow(flow).set_dependencies(
            self, keyword_tasks={key: task}, mapped=mapped
        )
        return self

    def set_downstream(
        self,
        task: Task,
        key: str | None = None,
        mapped: bool = False,
        flow: FlowBuilder | None = None,
    ) -> Task:
        task.set_upstream(self, key=key, mapped=mapped, flow=flow)
        return self

    def set_dependencies(  # noqa: PLR0917 - Prefect 1.x's signature
        self,
        flow: FlowBuilder | None = None,
        upstream_tasks: Iterable[Any] | None = None,
        downstream_tasks: Iterable[Any] | None = None,
        keyword_tasks: Mapping[str, Any] | None = None,
        mapped: bool = False,
        validate: bool | None = None,
    ) -> Task:
        """Add edges to and from this task in `flow` (default: the active flow)."""
        self._flow(flow).set_dependencies(
            self,
            upstream_tasks=upstream_tasks,
            downstream_tasks=downstream_tasks,
            keyword_tasks=keyword_tasks,
            mapped=mapped,
        )
        return self

    def _flow(self, flow: FlowBuilder | None) -> FlowBuilder:
        found: FlowBuilder | None = flow or flow_context.current_flow()
        if found is None:
            raise ValueError("No Flow was passed, and could not infer an active Flow context.")
        return found

    def __getitem__(self, key: Any) -> Task:
        """A task giving `self[key]`; it stores its result as this task does."""
        name = f"{self.name}[{key.name if isinstance(key, Task) else repr(key)}]"
        item = GetItem(name=name, checkpoint=self.checkpoint, result=self.result)
        return item.bind(self, key)

    def __iter__(self) -> Iterator[Task]:
        if self.nout is None:
            raise TypeError(
                f"Task is not iterable ({self.name!r}). If your task returns multiple "
                "results, pass `nout` to the task decorator/constructor, or provide a "
                "`Tuple` return-type annotation to your task."
            )
        return (self[i] for i in range(self.nout))


def _warn_if_wired(task: Task) -> None:
    """A copy of a task wired in the active flow keeps none of its edges: say so."""
    flow = flow_context.current_flow()
    edges = getattr(flow, "edges_to", None)
    if edges is not None and task in flow.tasks and (edges(task) or flow.edges_from(task)):
        warnings.warn(
            "You are making a copy of a task that has dependencies on or to other tasks "
            "in the active flow context. The copy will not retain those dependencies.",
            UserWarning,
            stacklevel=3,
        )


def _failure_callback(fn: Callable[[Task, states.State], None]) -> StateHandler:
    def on_failure(task: Task, old: states.State, new: states.State) -> states.State | None:
        if new.is_failed():
            fn(task, new)
        return None

    return on_failure


class FunctionTask(Task):
    """A task whose `run` is a plain function (what `@task` makes)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, **task_args: Any) -> None:
        self.fn = fn
        super().__init__(name=name or getattr(fn, "__name__", type(self).__name__), **task_args)

    def signature(self) -> inspect.Signature:
        return inspect.signature(self.fn)

    def _run_function(self) -> Callable[..., Any]:
        return self.fn

    def run(self, **inputs: Any) -> Any:
        return self.fn(**inputs)

    def run_with(self, inputs: Mapping[str, Any]) -> Any:
        return self.fn(**inputs)


def task(fn: Callable[..., Any] | None = None, **task_args: Any) -> Any:
    """Make a task from a function: `@task` or `@task(max_retries=2, retry_delay=1)`."""
    if fn is None:
        return lambda f: FunctionTask(f, **task_args)
    return FunctionTask(fn, **task_args)


class Constant(Task):
    """A literal value in the graph; its state is Success(value) without running."""

    def __init__(self, value: Any, name: str | None = None) -> None:
        self.value = value
        super().__init__(name=name or f"Constant[{type(value).__name__}]")

    def run(self) -> Any:
        return self.value


class GetItem(Task):
    def run(self, task_result: Any, key: Any) -> Any:  # type: ignore[override]
        return task_result[key]


class Collection(Task):
    """Builds a list/tuple/set/dict from upstream results (keys `arg_0`, `arg_1`, ...)."""

    def __init__(self, kind: type, keys: tuple[Any, ...] = (), **task_args: Any) -> None:
        self.kind = kind
        self.keys = keys
        super().__init__(name=kind.__name__.capitalize(), **task_args)

    def run(self, **items: Any) -> Any:
        values = [items[f"arg_{i}"] for i in range(len(items))]
        if self.kind is dict:
            return dict(zip(self.keys, values, strict=True))
        return self.kind(values)


def contains_task(value: Any) -> bool:
    if isinstance(value, Task):
        return True
    if isinstance(value, Annotated):
        return contains_task(value.value)
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_task(v) for v in value)
    if isinstance(value, dict):
        return any(contains_task(v) for v in value.values())
    return False


def as_task(value: Any, flow: FlowBuilder) -> Task:
    """A Task standing for `value`: itself, a collection task, or a Constant."""
    if isinstance(value, Task):
        return value
    if isinstance(value, dict) and contains_task(value):
        items = list(value.items())
        coll = Collection(dict, keys=tuple(k for k, _ in items))
        return coll.bind(**{f"arg_{i}": v for i, (_, v) in enumerate(items)}, flow=flow)
    if isinstance(value, list | tuple | set | frozenset) and contains_task(value):
        kind = list if isinstance(value, list) else tuple if isinstance(value, tuple) else set
        coll = Collection(kind)
        return coll.bind(**{f"arg_{i}": v for i, v in enumerate(value)}, flow=flow)
    return Constant(value)
