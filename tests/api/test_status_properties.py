"""Properties of the status builder over arbitrary event sequences."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from flowrun.api.status import StatusBuilder, StatusLimits
from flowrun.engine.events import TaskEvent
from flowrun.runs.render import render

STATES = ["Pending", "Running", "Retrying", "Success", "Failed", "TriggerFailed", "Skipped"]
FINISHED = {"Success", "Failed", "TriggerFailed", "Skipped", "Mapped"}

events = st.lists(
    st.builds(
        lambda task, index, state, message: TaskEvent(
            task=f"t{task}",
            map_index=index,
            state=state,
            message=message,
            run_count=1,
            timestamp=1.8e9,
            is_finished=state in FINISHED,
        ),
        st.integers(0, 8),
        st.one_of(st.none(), st.integers(0, 30)),
        st.sampled_from(STATES),
        st.one_of(st.none(), st.text(max_size=80)),
    ),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(events)
def test_counts_add_up_and_the_budget_holds(sequence: list[TaskEvent]) -> None:
    limits = StatusLimits(tasks_bytes=2_000, message_chars=40, failed_children=2)
    builder = StatusBuilder([f"t{i}" for i in range(4)], limits=limits)
    builder.apply_all(sequence)
    status = render(builder, phase="Running", now=1.8e9)
    assert sum(v for k, v in status["taskCounts"].items() if k != "total") == builder.total
    tasks_bytes = len(json.dumps(status["tasks"], separators=(",", ":")).encode())
    assert tasks_bytes <= limits.tasks_bytes + 2
    started = {e.task for e in sequence}
    assert len(status["tasks"]) + status.get("tasksOmitted", 0) == len(started)
    latest: dict[tuple[str, int], str] = {}
    for e in sequence:
        if e.map_index is not None:
            latest[(e.task, e.map_index)] = e.state
    for name, entry in status["tasks"].items():
        if "children" in entry:
            mine = [s for (t, _), s in latest.items() if t == name]
            by_state = {k: v for k, v in entry["children"].items() if k != "total"}
            assert sum(by_state.values()) == len(mine)
            assert len(entry.get("failedChildren", [])) <= 2
        assert len(entry.get("message", "")) <= 40
    failed_children = sum(1 for s in latest.values() if s in {"Failed", "TriggerFailed"})
    done, total = map(int, status["progress"].split("/"))
    assert 0 <= done <= total == builder.total
    assert status["failed"] >= failed_children
    # done and failed are kept incrementally; recount them the slow way
    records = builder._tasks.values()
    assert builder.done == sum(t.is_done() for t in records)
    assert builder.failed == sum(t.n_failed() for t in records)
