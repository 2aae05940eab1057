"""The run loggers: the runners' (`flowrun.TaskRunner`, `flowrun.FlowRunner`) and each
task's (`flowrun.<task name>`).

Prefect's runners log each run's start and end at INFO, and its loggers pass INFO by
default. Here too, unless the application set a level on the logger or on `flowrun`:
no handler is added, so where (and whether) the lines appear stays the application's
choice (the root logger's handlers, `logging.basicConfig()`, ...).
"""

from __future__ import annotations

import logging


def runner_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET and logging.getLogger("flowrun").level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger
