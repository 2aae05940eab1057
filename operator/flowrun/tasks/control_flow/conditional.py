"""switch, ifelse and merge: branches that skip, built from ordinary tasks (as Prefect's).

A branch that does not match is Skipped, and so is everything downstream of it unless a
task sets `skip_on_upstream_skip=False` (as `merge` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrun import triggers
from flowrun.engine import signals
from flowrun.engine.flow_base import FlowBase
from flowrun.engine.task import Task, as_task, task
from flowrun.utilities.tasks import tags


class Merge(Task):
    """The first upstream result that is not None (upstreams sorted by argument name)."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.setdefault("skip_on_upstream_skip", False):
            raise ValueError("Merge tasks must have `skip_on_upstream_skip=False`.")
        kwargs.setdefault("trigger", triggers.not_all_skipped)
        super().__init__(**kwargs)

    def run(self, **task_results: Any) -> Any:
        return next((v for _, v in sorted(task_results.items()) if v is not None), None)


class CompareValue(Task):
    """SKIPs unless the `value` it receives equals the one it was made with."""

    def __init__(self, value: Any, **kwargs: Any) -> None:
        self.value = value
        kwargs.setdefault("name", f'CompareValue: "{value}"')
        super().__init__(**kwargs)

    def run(self, value: Any) -> None:  # type: ignore[override]
        if value != self.value:
            raise signals.SKIP(f'Provided value "{value}" did not match "{self.value}"')


def switch(condition: Task, cases: Mapping[Any, Any], mapped: bool = False) -> None:
    """Run the case whose key equals `condition`'s result; the others are Skipped."""
    with tags("switch"):
        for value, branch in cases.items():
            target = branch
            if not isinstance(branch, Task):
                target = as_task(branch, Task()._flow(None))
            match = CompareValue(value=value).bind(value=condition, mapped=mapped)
            target.set_dependencies(upstream_tasks=[match], mapped=mapped)


@task
def as_bool(x: Any) -> bool:
    return bool(x)


def ifelse(condition: Task, true_task: Any, false_task: Any, mapped: bool = False) -> None:
    """Run `true_task` if `condition` is truthy, else `false_task`; the other is Skipped."""
    cases = {c: t for c, t in ((True, true_task), (False, false_task)) if t is not None}
    if cases:
        switch(condition=as_bool(condition, mapped=mapped), cases=cases, mapped=mapped)


def merge(*tasks: Any, flow: FlowBase | None = None, mapped: bool = False, **kwargs: Any) -> Task:
    """Join branches: the result of the one that ran (Skipped only if all were)."""
    bound: Task = Merge(**kwargs).bind(
        **{f"task_{i + 1}": t for i, t in enumerate(tasks)}, flow=flow, mapped=mapped
    )
    return bound
