"""The ETL example as a `Flow` object, for FlowRuns with `flow.ref: flowrun.examples.flows:etl`.

Written the Prefect Core 1.x way (change `prefect` to `flowrun` in a 1.x flow's imports and it
reads the same). Slugs are given explicitly so that status keys are the plain names.
"""

from __future__ import annotations

import datetime as dt

from flowrun import Flow, Parameter, task
from flowrun.examples import etl as fns

with Flow("etl") as etl:
    date = Parameter("date")
    limit = Parameter("limit", default=5)
    # As in Prefect 1.x, calling a task copies it and a slug given to task() would become
    # "extract-copy": the slug goes with the call instead.
    rows = task(fns.extract, name="extract")(date=date, limit=limit, task_args={"slug": "extract"})
    values = task(
        fns.flaky_transform,
        name="transform",
        max_retries=2,
        retry_delay=dt.timedelta(seconds=0),
    )(rows=rows, task_args={"slug": "transform"})
    loaded = task(fns.load, name="load")(values=values, task_args={"slug": "load"})
