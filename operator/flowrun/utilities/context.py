"""`flowrun.utilities.context`, as `prefect.utilities.context`."""

from flowrun.engine.context import Context, context

__all__ = ["Context", "context"]
