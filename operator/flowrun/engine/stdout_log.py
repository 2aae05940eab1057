"""`log_stdout=True`: what a task prints goes to its logger (`flowrun.<task name>`).

As in Prefect, this swaps `sys.stdout` while the task runs, which is process-wide: text
printed meanwhile by other threads lands in this task's log too.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Mapping
from typing import Any


class _ToLog(io.TextIOBase):
    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> int:
        if text.strip():
            self.logger.info(text.rstrip("\n"))
        return len(text)


def wrap(task: Any, run: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, Any]], Any]:
    """`run`, printing into the task's logger when the task asks for it."""
    if not getattr(task, "log_stdout", False):
        return run

    def logged(inputs: Mapping[str, Any]) -> Any:
        with contextlib.redirect_stdout(_ToLog(task.logger)):
            return run(inputs)

    return logged
