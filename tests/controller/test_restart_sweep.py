"""A restarted operator (product path: runner Pods) meets a finished FlowRun whose end was cut
short (the operator was killed before it deleted the runner's objects): it deletes them. The
same under the chart's own RBAC: tests/packaging/test_rbac_needed.py."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns
from support.leftovers import cut_short, remaining

pytestmark = pytest.mark.controlplane


def test_a_restart_deletes_what_a_cut_short_run_left(
    start_operator: Any, own_frs: FlowRuns
) -> None:
    frs = own_frs
    left = cut_short(frs, "cut-short")
    assert remaining(frs, left) == ["serviceaccount", "job"]
    start_operator("-n", frs.namespace)  # the product path: no --allow-in-process
    wait_for(lambda: not remaining(frs, left), timeout=120, what="the runner's objects deleted")
    assert frs.status("cut-short")["phase"] == "Succeeded"
