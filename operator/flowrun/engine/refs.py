"""Functions named as data: "package.module:function", imported where they run.

`RefTask` is the task of a FlowGraph: whoever holds the graph needs none of the user's
code; the worker that runs the task imports it on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from flowrun.engine.task import FunctionTask, Task


def resolve(ref: str) -> Any:
    """Import "package.module:attribute" (dots after the colon walk attributes)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{ref!r} is not of the form 'package.module:attribute'")
    found: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        found = getattr(found, part)
    return found


def constant(value: Any) -> Any:
    """The callable behind a mapped literal written as a task."""
    return value


def collect_list(**items: Any) -> list[Any]:
    return [items[f"arg_{i}"] for i in range(len(items))]


def collect_tuple(**items: Any) -> tuple[Any, ...]:
    return tuple(collect_list(**items))


def collect_set(**items: Any) -> set[Any]:
    return set(collect_list(**items))


class RefTask(Task):
    """A task whose function is named, and imported on first use where it runs."""

    def __init__(self, fn: str, **task_args: Any) -> None:
        self.fn_ref = fn
        self._fn: Callable[..., Any] | None = None
        super().__init__(**task_args)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fn": None}

    def run(self, **inputs: Any) -> Any:
        return self.run_with(inputs)

    def run_with(self, inputs: Mapping[str, Any]) -> Any:
        if self._fn is None:
            found = resolve(self.fn_ref)
            # "module:name" of an @task function finds the task; run its function.
            self._fn = found.fn if isinstance(found, FunctionTask) else found
        positional = sorted((int(k[5:]), v) for k, v in inputs.items() if k.startswith("__arg"))
        named = {k: v for k, v in inputs.items() if not k.startswith("__arg")}
        return self._fn(*(v for _, v in positional), **named)
