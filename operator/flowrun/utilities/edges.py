"""`flowrun.utilities.edges`, as `prefect.utilities.edges`."""

from flowrun.engine.edges import Annotated as EdgeAnnotation
from flowrun.engine.edges import flatten, mapped, unmapped

__all__ = ["EdgeAnnotation", "flatten", "mapped", "unmapped"]
