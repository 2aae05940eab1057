"""`flowrun.utilities`, the parts of `prefect.utilities` a flow uses."""
