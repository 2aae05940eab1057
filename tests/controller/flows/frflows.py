"""A `flow.ref` flow with the engine's automatic slugs (`NAME-N`), for name-or-slug tests."""

from __future__ import annotations

import frtasks

from flowrun import Flow, task

with Flow("totals") as totals:
    numbers = task(frtasks.numbers, name="numbers")(4)
    total = task(frtasks.total, name="total")(numbers)
    twice = task(frtasks.double, name="x")(total)
    again = task(frtasks.double, name="x")(twice)
