"""`flowrun.tasks.core.constants`, as `prefect.tasks.core.constants`."""

from flowrun.engine.task import Constant

__all__ = ["Constant"]
