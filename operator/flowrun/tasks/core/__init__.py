"""`flowrun.tasks.core`, as `prefect.tasks.core`."""

from flowrun.tasks.core import constants, function, operators

__all__ = ["constants", "function", "operators"]
