"""The Argo CD health check (deploy/argocd/health.lua) on the status shapes the operator writes.

The statuses come from the operator's own status builder (`flowrun.runs.render`), so a
renamed field or phase breaks this test; test_install.py feeds it real FlowRuns as well.
"""

from __future__ import annotations

from typing import Any

import pytest
from healthkit import HealthCheck

from flowrun.runs import render


def phase_status(phase: str, **fields: Any) -> dict[str, Any]:
    """The phase part as the operator sends it (no nulls; a terminal phase has its end time)."""
    end = 1.8e9 if phase in ("Succeeded", "Failed", "Cancelled") else None
    part = render.phase_fragment(phase, now=1.8e9, completion_time=end, **fields)
    return {k: v for k, v in part.items() if v is not None}


@pytest.fixture(scope="module")
def health() -> HealthCheck:
    return HealthCheck()


def flowrun(
    status: dict[str, Any] | None, *, generation: int = 1, cancel: bool = False
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": "etl", "namespace": "ns", "generation": generation},
        "spec": {"flow": {"tasks": [{"name": "a", "fn": "m:f"}]}, "cancel": cancel},
    }
    if status is not None:
        obj["status"] = status
    return obj


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Pending", "Progressing"),
        ("Running", "Progressing"),
        ("Succeeded", "Healthy"),
        ("Failed", "Degraded"),
        ("Cancelled", "Suspended"),
    ],
)
def test_each_phase(health: HealthCheck, phase: str, expected: str) -> None:
    status = phase_status(phase, reason="Because", message=f"It is {phase}.", generation=1)
    result = health(flowrun(status))
    assert result["status"] == expected
    assert f"It is {phase}." in result["message"]


def test_no_status_yet_is_progressing(health: HealthCheck) -> None:
    assert health(flowrun(None))["status"] == "Progressing"


def test_status_of_an_older_generation_is_progressing(health: HealthCheck) -> None:
    status = phase_status("Succeeded", reason="Done", message="ok", generation=1)
    result = health(flowrun(status, generation=2))
    assert result["status"] == "Progressing"
    assert "generation 2" in result["message"]


def test_progress_is_shown(health: HealthCheck) -> None:
    status = {**phase_status("Running", reason="R", message="", generation=1)}
    status["progress"] = "7/10"
    status["message"] = ""
    result = health(flowrun(status))
    assert result["status"] == "Progressing"
    assert "7/10" in result["message"]


def test_cancel_requested_while_running(health: HealthCheck) -> None:
    status = phase_status("Running", reason="R", message="", generation=1)
    status["message"] = ""
    result = health(flowrun(status, cancel=True))
    assert result["status"] == "Progressing"
    assert "cancelled" in result["message"]


@pytest.mark.parametrize(
    ("phase", "expected"),
    [("Succeeded", "Healthy"), ("Failed", "Degraded"), ("Running", "Progressing")],
)
def test_without_a_phase_the_kstatus_conditions_decide(
    health: HealthCheck, phase: str, expected: str
) -> None:
    status = phase_status(phase, reason="R", message="m", generation=1)
    del status["phase"]
    assert health(flowrun(status))["status"] == expected


def test_unknown_phase_is_not_healthy(health: HealthCheck) -> None:
    assert (
        health(flowrun({"phase": "Exploded", "observedGeneration": 1}))["status"] == "Progressing"
    )
