"""The operator methods of Task (`t + 1`, `t > u`, `t.is_equal(u)`, `t | u`, ...).

Each builds an operator task bound in the current flow, as Prefect 1.x does. `|` is
not "or": `a | b` makes `b` run after `a` (Prefect's meaning); `t.or_(u)` is "or".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowrun.engine.task import Task


def _op(name: str, *args: Any) -> Task:
    from flowrun.engine import operators  # noqa: PLC0415 - operators subclass Task

    made: Task = getattr(operators, name)().bind(*args)
    return made


class TaskOperators:
    def is_equal(self, other: object) -> Task:
        return _op("Equal", self, other)

    def is_not_equal(self, other: object) -> Task:
        return _op("NotEqual", self, other)

    def not_(self) -> Task:
        return _op("Not", self)

    def and_(self, other: object) -> Task:
        return _op("And", self, other)

    def or_(self, other: object) -> Task:
        return _op("Or", self, other)

    def pipe(self, _task: Any, **kwargs: Any) -> Task:
        """`t.pipe(f, y=1)` is `f(t, y=1)`: chain calls left to right."""
        made: Task = _task(self, **kwargs)
        return made

    def __or__(self, other: object) -> object:
        self._flow(None).set_dependencies(self, downstream_tasks=[other])  # type: ignore[attr-defined]
        return other

    def __ror__(self, other: object) -> Task:
        self._flow(None).set_dependencies(self, upstream_tasks=[other])  # type: ignore[attr-defined]
        return self  # type: ignore[return-value]

    def __add__(self, other: object) -> Task:
        return _op("Add", self, other)

    def __sub__(self, other: object) -> Task:
        return _op("Sub", self, other)

    def __mul__(self, other: object) -> Task:
        return _op("Mul", self, other)

    def __truediv__(self, other: object) -> Task:
        return _op("Div", self, other)

    def __floordiv__(self, other: object) -> Task:
        return _op("FloorDiv", self, other)

    def __mod__(self, other: object) -> Task:
        return _op("Mod", self, other)

    def __pow__(self, other: object) -> Task:
        return _op("Pow", self, other)

    def __and__(self, other: object) -> Task:
        return _op("And", self, other)

    def __radd__(self, other: object) -> Task:
        return _op("Add", other, self)

    def __rsub__(self, other: object) -> Task:
        return _op("Sub", other, self)

    def __rmul__(self, other: object) -> Task:
        return _op("Mul", other, self)

    def __rtruediv__(self, other: object) -> Task:
        return _op("Div", other, self)

    def __rfloordiv__(self, other: object) -> Task:
        return _op("FloorDiv", other, self)

    def __rmod__(self, other: object) -> Task:
        return _op("Mod", other, self)

    def __rpow__(self, other: object) -> Task:
        return _op("Pow", other, self)

    def __rand__(self, other: object) -> Task:
        return _op("And", other, self)

    def __gt__(self, other: object) -> Task:
        return _op("GreaterThan", self, other)

    def __ge__(self, other: object) -> Task:
        return _op("GreaterThanOrEqual", self, other)

    def __lt__(self, other: object) -> Task:
        return _op("LessThan", self, other)

    def __le__(self, other: object) -> Task:
        return _op("LessThanOrEqual", self, other)
