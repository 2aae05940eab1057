"""The operator methods of Task (`t + 1`, `t > u`, `t.is_equal(u)`, `t | u`, ...).

Each builds an operator task bound in the current flow, as Prefect 1.x does. `|` is
not "or": `a | b` makes `b` run after `a` (Prefect's meaning); `t.or_(u)` is "or".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowrun.engine.edges import Annotated

# The operator task classes by name. `operators` subclasses Task, which has these methods,
# so this module can not import it: it registers its classes here when imported, and the
# engine package imports it (`flowrun/engine/__init__.py`). Methods return a Task, typed
# here as `Task` (an alias of this mixin, as `task` can not be imported either).
OPERATOR_TASKS: dict[str, Callable[[], Any]] = {}


def _op(name: str, *args: Any) -> Task:
    made: Task = OPERATOR_TASKS[name]().bind(*args)
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

    def pipe(_flowrun_self, _flowrun_task: Any, **kwargs: Any) -> Task:
        """`t.pipe(f, y=1)` is `f(t, y=1)`: chain calls left to right. An edge annotation
        (`t.pipe(flatten)`) gives the task itself, as Prefect's `as_task` does: it only
        matters in an argument. (Odd first names, so `self` may not be a keyword.)"""
        if "self" in kwargs:
            raise ValueError('You cannot use the keyword argument "self" in .pipe.')
        made = _flowrun_task(_flowrun_self, **kwargs)
        if isinstance(made, Annotated):
            made = made.value
        piped: Task = made
        return piped

    def __or__(self, other: object) -> object:
        self._flow(None).set_dependencies(self, downstream_tasks=[other])  # type: ignore[attr-defined]
        return other

    def __ror__(self, other: object) -> Task:
        self._flow(None).set_dependencies(self, upstream_tasks=[other])  # type: ignore[attr-defined]
        return self

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


Task = TaskOperators
