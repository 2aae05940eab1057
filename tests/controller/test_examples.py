"""Examples are tests: every manifest under examples/ succeeds under the operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowrun.dev.operator_process import OperatorProcess
from support.flowruns import ROOT, FlowRuns

pytestmark = pytest.mark.controlplane

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_succeeds_under_the_operator(
    shared_operator: OperatorProcess, frs: FlowRuns, kubectl: Any, path: Path
) -> None:
    # A file may hold the FlowTemplates its FlowRun names, too.
    [manifest] = [d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "FlowRun"]
    kubectl("apply", "-n", frs.namespace, "-f", str(path))
    status = frs.wait_phase(manifest["metadata"]["name"], timeout=120)
    assert status["phase"] == "Succeeded", status
    for name in manifest["spec"].get("returnTasks", []):
        assert name in status.get("results", {}), status
