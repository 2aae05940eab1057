"""Parameters: a flow run's named inputs, as Prefect 1.x's `Parameter` task."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowrun.engine import signals
from flowrun.engine.context import context
from flowrun.engine.results.basic import PrefectResult
from flowrun.engine.task import Task


class _NoDefault:
    def __repr__(self) -> str:
        return "<no default>"


NO_DEFAULT: Any = _NoDefault()


class Parameter(Task):
    """A run-time input; its slug is its name. Required unless it has a default.

    As in Prefect, its result is a `PrefectResult` (the value as JSON) and it checkpoints,
    which matters only when the run's context has `checkpointing=True`.
    """

    def __init__(
        self,
        name: str,
        default: Any = NO_DEFAULT,
        required: bool | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        if required is None:
            required = default is NO_DEFAULT
        self.default = None if default is NO_DEFAULT else default
        self.required = required
        super().__init__(name=name, slug=name, tags=tags, result=PrefectResult(), checkpoint=True)

    def __repr__(self) -> str:
        return f"<Parameter: {self.name}>"

    def __call__(self, flow: Any = None) -> Parameter:  # type: ignore[override]
        """Add the parameter to `flow` (default: the active one); it takes no arguments."""
        bound = self.bind(flow=flow)
        assert isinstance(bound, Parameter)
        return bound

    def copy(self, name: str, **task_args: Any) -> Task:  # type: ignore[override]
        """A copy under a new name (a parameter's slug is its name), as in Prefect."""
        return super().copy(name=name, slug=name, **task_args)

    def run(self) -> Any:
        params = context.get("parameters") or {}
        if self.name in params:
            return params[self.name]
        if self.required:
            raise signals.FAIL(f'Parameter "{self.name}" was required but not provided.')
        return self.default
