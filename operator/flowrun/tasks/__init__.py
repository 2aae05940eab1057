"""`flowrun.tasks`: the task library parts of `prefect.tasks` that are not integrations."""
