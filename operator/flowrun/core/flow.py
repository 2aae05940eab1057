"""`flowrun.core.flow`, as `prefect.core.flow`."""

from flowrun.engine.flow import Flow

__all__ = ["Flow"]
