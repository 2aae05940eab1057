"""FilterTask, as `prefect.tasks.control_flow.filter`: keep the results a function accepts.

Its default drops None and exceptions, the shape of a mapped task's results with failed or
skipped children, so a downstream task maps over the good ones only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowrun import triggers
from flowrun.engine import signals
from flowrun.engine.task import Task


def _not_none_nor_error(result: Any) -> bool:
    # flowrun's signals are BaseExceptions (Prefect's are Exceptions): a SKIP goes too
    return not isinstance(result, (type(None), Exception, signals.FlowrunSignal))


class FilterTask(Task):
    """Filters a list of results with `filter_func` (default: not None, not an exception);
    runs when all upstreams finished (`all_finished`) and is not skipped with them, as in
    Prefect. `log_func`, if given, makes the info log line from the filtered list."""

    def __init__(
        self,
        filter_func: Callable[[Any], bool] | None = None,
        log_func: Callable[[list[Any]], str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("skip_on_upstream_skip", False)
        kwargs.setdefault("trigger", triggers.all_finished)
        self.filter_func = filter_func or _not_none_nor_error
        self.log_func = log_func
        super().__init__(**kwargs)

    def run(self, task_results: list[Any]) -> list[Any]:  # type: ignore[override]
        filtered = [r for r in task_results if self.filter_func(r)]
        if self.log_func:
            self.logger.info(self.log_func(filtered))
        return filtered
