"""The trust boundary on the Kubernetes provider, with the Helm-installed operators on the node.

A FlowRun's author chooses its DaskCluster's image and environment; `executor.dask.env` alone
can load code into its scheduler (`DASK_DISTRIBUTED__SCHEDULER__PRELOAD`). Here that code sends a
pickled payload to every Dask client of the scheduler: the only client is the run's runner Pod.
The operator creates the DaskCluster and waits for its scheduler through the API server only.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns
from support.nodeops import PodOperator

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


def scheduler_logs(frs: FlowRuns) -> str:
    out = frs.kubectl(
        "logs", "-n", frs.namespace, "-l", "dask.org/component=scheduler", "--tail=-1", check=False
    )
    return str(out.stdout)


def test_a_hostile_scheduler_of_a_daskcluster_reaches_only_the_runner_pod(
    node_operator: Any, restricted_namespace: str, tmp_path: Path
) -> None:
    frs = FlowRuns(node_operator.kubectl, restricted_namespace, tmp_path)
    operator = PodOperator(node_operator)
    marker = f"/tmp/operator-was-attacked-{uuid.uuid4().hex[:8]}"
    preload = (HERE / "hostile_scheduler.py").read_text()
    env = [
        {"name": "DASK_DISTRIBUTED__SCHEDULER__PRELOAD", "value": json.dumps([preload])},
        {"name": "HOSTILE_MARKER", "value": marker},
    ]
    spec = {
        # Long enough to read the scheduler's log before the run ends and its cluster goes.
        "flow": {"tasks": [{"name": "one", "fn": "time:sleep", "args": [120]}]},
        "executor": {
            "type": "Dask",
            "dask": {
                "cluster": "Kubernetes",
                "workers": 1,
                "image": node_operator.image,
                "env": env,
            },
        },
        "activeDeadlineSeconds": 240,
    }
    frs.apply("victim", spec)
    uid = str((frs.get("victim") or {})["metadata"]["uid"])
    runner = f"fr-victim-{uid.replace('-', '')[:8]}-runner"

    def reported() -> str | None:
        # The HTTP server's request lines (the log also shows the preload's own text).
        lines = [x for x in scheduler_logs(frs).splitlines() if '"GET /ran-in-' in x]
        return lines[0] if lines else None

    try:
        line = wait_for(reported, timeout=300, what="the payload to run somewhere")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{node_operator.diagnosis(frs.namespace)}") from None
    assert f'"GET /ran-in-{runner}-' in line, line  # in this FlowRun's runner Pod only
    assert not operator.file_exists(marker)
    frs.kubectl("delete", "flowrun", "victim", "-n", frs.namespace, "--wait=false")
    wait_for(lambda: frs.get("victim") is None, timeout=180, what="the FlowRun to go")
    node_operator.wait_clean(frs.namespace)
    assert not operator.file_exists(marker)
