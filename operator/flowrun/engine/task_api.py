"""The parts of Prefect 1.x's Task API beyond running and binding.

`inputs()` / `outputs()` describe `run`'s signature, `logger` is the task's logger
(`flowrun.<name>`), `nout` is inferred from a `-> Tuple[...]` annotation, and a subclass's
`run` is checked when the class is defined (as Prefect's metaclass does).
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

RESERVED = frozenset({"upstream_tasks", "mapped", "task_args", "flow"})


def check_run_signature(run: Callable[..., Any], where: str) -> None:
    """Refuse what flowrun cannot pass: *args and the reserved keyword names."""
    for param in inspect.signature(run).parameters.values():
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
    if typing.get_origin(returns) is not tuple:
        return None
    args = typing.get_args(returns)
    if len(args) == 2 and args[1] is Ellipsis:
        return None
    return len(args)


class TaskAPI:
    name: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None:
            check_run_signature(run, f"Task class {cls.__name__}")

    def signature(self) -> inspect.Signature:
        raise NotImplementedError

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"flowrun.{self.name}")

    def inputs(self) -> dict[str, dict[str, Any]]:
        """`{argument: {"type": annotation, "required": bool}}` of `run`."""
        hints = self._hints()
        found: dict[str, dict[str, Any]] = {}
        for name, param in self.signature().parameters.items():
            if param.kind is param.VAR_KEYWORD:
                continue
            kind = hints.get(name, Any)
            found[name] = {"type": kind, "required": param.default is inspect.Parameter.empty}
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
