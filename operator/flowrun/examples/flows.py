"""The ETL example as a `Flow` object, for FlowRuns with `flow.ref: flowrun.examples.flows:etl`.

Written the Prefect Core 1.x way (change `prefect` to `flowrun` in a 1.x flow's imports and it
reads the same). Slugs are given explicitly so that `startTasks`, `returnTasks` and status keys
use the plain names.
"""

from __future__ import annotations

import datetime as dt

from flowrun import Flow, Parameter, task
from flowrun.examples import etl as fns

with Flow("etl") as etl:
    date = Parameter("date")
    limit = Parameter("limit", default=5)
    rows = task(fns.extract, name="extract", slug="extract")(date=date, limit=limit)
    values = task(
        fns.flaky_transform,
        name="transform",
        slug="transform",
        max_retries=2,
        retry_delay=dt.timedelta(seconds=0),
    )(rows=rows)
    loaded = task(fns.load, name="load", slug="load")(values=values)
