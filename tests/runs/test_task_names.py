"""returnTasks, startTasks, taskStates and referenceTasks take a task's name when it is unique
in the flow, its slug otherwise (issue 9)."""

from __future__ import annotations

import pytest

from flowrun.api import flows, models, validation
from flowrun.api.validation import SpecError

SLUGS = ["numbers-1", "total-1", "x-1", "x-2"]


def spec(**fields: object) -> models.FlowRunSpec:
    return models.FlowRunSpec.model_validate({"flow": {"ref": "m:f"}, **fields})


def test_a_unique_name_becomes_its_slug_everywhere() -> None:
    given = spec(
        returnTasks=["total", "x-2"],
        startTasks=["total"],
        taskStates={"numbers": {"state": "Success", "result": [1]}},
        flow={"ref": "m:f", "referenceTasks": ["total"]},
    )
    out = flows.slugs_for_names(given, SLUGS)
    assert out.return_tasks == ["total-1", "x-2"]
    assert out.start_tasks == ["total-1"]
    assert list(out.task_states or {}) == ["numbers-1"]
    assert out.flow.reference_tasks == ["total-1"]
    validation.check_spec(out, tasks=SLUGS, parameters=[])


def test_a_shared_name_is_refused_with_the_slugs_listed() -> None:
    out = flows.slugs_for_names(spec(returnTasks=["x"]), SLUGS)
    with pytest.raises(SpecError, match=r"spec.returnTasks\[0\]: unknown task 'x'.*x-1.*x-2"):
        validation.check_spec(out, tasks=SLUGS, parameters=[])


def test_a_slug_wins_over_a_name() -> None:
    slugs = ["a-1", "a-1-1"]  # a task named "a-1" has the auto slug "a-1-1"
    assert flows.slugs_for_names(spec(returnTasks=["a-1"]), slugs).return_tasks == ["a-1"]
