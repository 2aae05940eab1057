"""The parts of Prefect 1.x's Task API beyond running and binding.

`inputs()` / `outputs()` describe `run`'s signature, `logger` is the task's logger
(`flowrun.<name>`), `nout` is inferred from a `-> Tuple[...]` annotation, and a subclass's
`run` is checked when the class is defined (as Prefect's metaclass does).
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
import warnings
from collections.abc import Callable
from typing import Any

from flowrun.engine.logs import runner_logger

RESERVED = frozenset({"upstream_tasks", "mapped", "task_args", "flow"})

# What calling a task takes besides `run`'s arguments (shown in `inspect.signature(task)`).
CALL_PARAMETERS = (
    inspect.Parameter("mapped", inspect.Parameter.KEYWORD_ONLY, default=False),
    inspect.Parameter("task_args", inspect.Parameter.KEYWORD_ONLY, default=None),
    inspect.Parameter("upstream_tasks", inspect.Parameter.KEYWORD_ONLY, default=None),
    inspect.Parameter("flow", inspect.Parameter.KEYWORD_ONLY, default=None),
)

# The attributes `Task.__init__` sets; a subclass setting one first is warned of, as in
# Prefect (tests/engine/test_task_api_compat.py keeps this list equal to a Task's).
RESERVED_ATTRIBUTES = frozenset(
    {
        "auto_generated", "cache_for", "cache_key", "cache_validator", "checkpoint",
        "log_stdout", "map_batch_size", "max_retries", "name", "nout", "result",
        "retry_delay", "retry_on", "skip_on_upstream_skip", "slug", "state_handlers", "tags",
        "target", "task_run_name", "timeout", "trigger",
    }
)  # fmt: skip

UNINSPECTABLE = (
    "This function can not be inspected (this is common with builtin and numpy functions). "
    "In this case, we recommend creating a new function that wraps the original and "
    "calling `task` on that function."
)


def check_run_signature(run: Callable[..., Any], where: str) -> None:
    """Refuse what flowrun cannot pass: *args and the reserved keyword names."""
    try:
        signature = inspect.signature(run)
    except ValueError as exc:
        raise ValueError(f"{where}: {UNINSPECTABLE}") from exc
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            raise ValueError(
                f"{where}: run() may not take *args: flowrun passes every argument by keyword."
            )
        if param.name in RESERVED:
            raise ValueError(
                f"{where}: these names are reserved and may not be used as arguments of "
                f"run(): {sorted(RESERVED)} (found {param.name!r})."
            )


def infer_nout(fn: Callable[..., Any]) -> int | None:
    """The length of a `-> Tuple[a, b]` / `-> tuple[a, b]` return annotation, else None."""
    try:
        returns = typing.get_type_hints(fn).get("return")
    except Exception:
        return None
    if typing.get_origin(returns) is not tuple or returns in {typing.Tuple, tuple}:  # noqa: UP006
        return None  # not a tuple, or a bare `Tuple` (any length)
    args = typing.get_args(returns)
    if len(args) == 2 and args[1] is Ellipsis:
        return None
    return len(args)


def warn_reserved(task: Any) -> None:
    """Warn of a subclass that set an attribute `Task.__init__` is about to overwrite."""
    for attr in sorted(RESERVED_ATTRIBUTES):
        if hasattr(task, attr):
            warnings.warn(
                f"`{type(task).__name__}` sets a `{attr}` attribute, which will be "
                "overwritten by `flowrun.Task`. Please rename this attribute to avoid this issue.",
                UserWarning,
                stacklevel=4,
            )


def _warn_task_arguments(init: Callable[..., None]) -> Callable[..., None]:
    """`init`, warning when given a Task: tasks go to the call, not the constructor."""

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        if any(isinstance(a, TaskAPI) for a in (*args, *kwargs.values())):
            name = type(self).__name__
            warnings.warn(
                f"A Task was passed as an argument to {name}, you likely want to first "
                f"initialize {name} with any static (non-Task) arguments, then call the "
                "initialized task with any dynamic (Task) arguments instead. For example:\n\n"
                f"  my_task = {name}(...)  # static (non-Task) args go here\n"
                "  res = my_task(...)  # dynamic (Task) args go here",
                UserWarning,
                stacklevel=2,
            )
        init(self, *args, **kwargs)

    return checked


class _CallSignature:
    """`inspect.signature(task)`: `run`'s arguments and the call's own (Prefect's
    `__signature__`); looked up on the class it is absent, so the class's is its `__init__`."""

    def __get__(self, task: Any, owner: type) -> inspect.Signature:
        if task is None:
            raise AttributeError("__signature__")
        params = [*task.signature().parameters.values(), *CALL_PARAMETERS]
        params.sort(key=lambda p: int(p.kind))  # stable: the call's own end the keyword-only
        return inspect.Signature(params, return_annotation="Task")


class TaskAPI:
    name: str
    __signature__ = _CallSignature()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None:
            check_run_signature(run, f"Task class {cls.__name__}")
        if "__init__" in cls.__dict__:
            cls.__init__ = _warn_task_arguments(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def signature(self) -> inspect.Signature:
        raise NotImplementedError

    @property
    def logger(self) -> logging.Logger:
        """`flowrun.<name>`; it passes INFO (what `log_stdout` prints) unless the
        application set a level, as Prefect's task loggers do."""
        return runner_logger(f"flowrun.{self.name}")

    def inputs(self) -> dict[str, dict[str, Any]]:
        """`{argument: {"type": annotation, "required": bool, "default": value}}` of `run`
        (the default None when there is none)."""
        hints = self._hints()
        found: dict[str, dict[str, Any]] = {}
        for name, param in self.signature().parameters.items():
            if param.kind is param.VAR_KEYWORD:
                continue
            kind = hints.get(name, Any)
            required = param.default is inspect.Parameter.empty
            default = None if required else param.default
            found[name] = {"type": kind, "required": required, "default": default}
        return found

    def outputs(self) -> Any:
        """`run`'s return annotation (Any when it has none)."""
        return self._hints().get("return", Any)

    def _run_function(self) -> Callable[..., Any]:
        raise NotImplementedError

    def _hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self._run_function())
        except Exception:  # unresolvable annotations: describe what can be described
            return {}
