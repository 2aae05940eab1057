"""`flowrun.schedules`, as `prefect.schedules`: clocks, filters and adjustments as data.

A Flow with a `schedule` runs once per scheduled time when `flow.run()` is called (it
waits for each), as Prefect does; `flow.run(run_on_schedule=False)` runs once now.
The operator does not schedule FlowRuns (a CronJob or a GitOps tool makes them).
"""

from flowrun.schedules import adjustments, clocks, filters
from flowrun.schedules.schedules import CronSchedule, IntervalSchedule, Schedule

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule", "adjustments", "clocks", "filters"]
