"""An operator watching namespaces by glob runs the FlowRuns of a namespace created while it
starts. kopf lists namespaces twice at start-up (once to fill its list, once to begin its watch)
and skipped the second listing, so a namespace created in between was never watched and its
FlowRuns never ran (a CI run saw this: phase None for 90 s). The gap is widened here by
`slowwatch/sitecustomize.py`, so the namespace lands in it every time."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from support.flowruns import FLOWS, OWN_PREFIX, FlowRuns

pytestmark = pytest.mark.controlplane

SLOWWATCH = Path(__file__).parent / "slowwatch"


def test_a_namespace_created_while_the_operator_lists_namespaces_is_watched(
    kubectl: Any, kubeconfig_path: Path, flowrun_crd: None, tasks_dir: Path, tmp_path: Path
) -> None:
    name = f"{OWN_PREFIX}{uuid.uuid4().hex[:8]}"
    mark = tmp_path / "first-listing-done"
    env = {
        "PYTHONPATH": os.pathsep.join([str(SLOWWATCH), str(FLOWS)]),
        "SLOW_NAMESPACE_WATCH": "8",
        "SLOW_NAMESPACE_WATCH_MARK": str(mark),
    }
    args = ["--allow-in-process", "-n", f"{name}*"]
    with OperatorProcess(kubeconfig_path, tmp_path / "operator.log", args, env=env) as operator:
        wait_for(mark.exists, timeout=60, what="kopf's first listing of namespaces")
        kubectl("create", "namespace", name)
        try:
            frs = FlowRuns(kubectl, name, tasks_dir)
            ring = [{"name": f"t{k}", "fn": "frtasks:echo", "args": [k], "upstream": [f"t{1 - k}"]}
                    for k in (0, 1)]  # fmt: skip
            frs.apply("ring", {"flow": {"tasks": ring}, "executor": {"type": "Local"}})
            try:
                status = frs.wait_phase("ring", timeout=60)
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n{operator.log_text()[-3000:]}") from None
            assert status["phase"] == "Failed", status
            assert "cycle" in status["message"], status
            assert f"Watching namespace '{name}', which appeared" in operator.log_text()
        finally:
            kubectl("delete", "namespace", name, "--wait=false", check=False)
