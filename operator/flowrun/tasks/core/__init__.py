"""`flowrun.tasks.core`, as `prefect.tasks.core`."""
