"""`flowrun.tasks`: the task library parts of `prefect.tasks` that are not integrations."""

from flowrun.tasks import control_flow, core, secrets

__all__ = ["control_flow", "core", "secrets"]
