"""Operator tasks: what `a + b`, `a > b`, `a.is_equal(b)`... build between tasks.

Each is a Task whose `run(x, y)` applies the Python operator, as in Prefect's
`prefect.tasks.core.operators`.
"""

from __future__ import annotations

import operator
from typing import Any

from flowrun.engine.task import GetItem, Task
from flowrun.engine.task_operators import OPERATOR_TASKS

_NO_DEFAULT: Any = object()


class GetAttr(Task):
    """`getattr(task_result, attr)`; dotted names reach nested attributes."""

    def __init__(self, default: Any = _NO_DEFAULT, **kwargs: Any) -> None:
        self.default = default
        super().__init__(**kwargs)

    def run(self, task_result: Any, attr: str, default: Any = _NO_DEFAULT) -> Any:  # type: ignore[override]
        fallback = self.default if default is _NO_DEFAULT else default
        try:
            return operator.attrgetter(attr)(task_result)
        except AttributeError:
            if fallback is _NO_DEFAULT:
                raise
            return fallback


class _Binary(Task):
    op: Any = None

    def run(self, x: Any, y: Any) -> Any:  # type: ignore[override]
        return type(self).op(x, y)


class Add(_Binary):
    op = operator.add


class Sub(_Binary):
    op = operator.sub


class Mul(_Binary):
    op = operator.mul


class Div(_Binary):
    op = operator.truediv


class FloorDiv(_Binary):
    op = operator.floordiv


class Pow(_Binary):
    op = operator.pow


class Mod(_Binary):
    op = operator.mod


class And(Task):
    def run(self, x: Any, y: Any) -> Any:  # type: ignore[override]
        return x and y


class Or(Task):
    def run(self, x: Any, y: Any) -> Any:  # type: ignore[override]
        return x or y


class Not(Task):
    def run(self, x: Any) -> bool:  # type: ignore[override]
        return not x


class Equal(_Binary):
    op = operator.eq


class NotEqual(_Binary):
    op = operator.ne


class GreaterThanOrEqual(_Binary):
    op = operator.ge


class GreaterThan(_Binary):
    op = operator.gt


class LessThanOrEqual(_Binary):
    op = operator.le


class LessThan(_Binary):
    op = operator.lt


__all__ = [
    "Add",
    "And",
    "Div",
    "Equal",
    "FloorDiv",
    "GetAttr",
    "GetItem",
    "GreaterThan",
    "GreaterThanOrEqual",
    "LessThan",
    "LessThanOrEqual",
    "Mod",
    "Mul",
    "Not",
    "NotEqual",
    "Or",
    "Pow",
    "Sub",
]

OPERATOR_TASKS.update({name: globals()[name] for name in __all__})
