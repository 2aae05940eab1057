"""Flow.run on a schedule: one run per scheduled time, waiting for each (as Prefect's).

Each run gets the event's parameter defaults (over the given parameters) and its time as
`scheduled_start_time` in the context.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from typing import Any

from flowrun.engine import state as states

RunOnce = Callable[[Mapping[str, Any], Mapping[str, Any]], states.State]


def run_on_schedule(
    schedule: Any, parameters: Mapping[str, Any], context: Mapping[str, Any], run_once: RunOnce
) -> states.State:
    """Run `run_once(parameters, context)` at each time `schedule.next(1)` gives."""
    final: states.State | None = None
    while True:
        upcoming = schedule.next(1, return_events=True)
        if not upcoming:
            if final is None:
                raise ValueError("Flow has no more scheduled runs.")
            return final
        event = upcoming[0]
        start = getattr(event, "start_time", event)
        _sleep_until(start)
        given = {**parameters, **getattr(event, "parameter_defaults", {})}
        final = run_once(given, {**context, "scheduled_start_time": start})


def _sleep_until(when: dt.datetime) -> None:
    wait = (when - states.now()).total_seconds()
    if wait > 0:
        threading.Event().wait(wait)
