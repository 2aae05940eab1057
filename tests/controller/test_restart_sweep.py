"""A restarted operator (product path: runner Pods) meets a finished FlowRun whose end was cut
short (the operator was killed before it deleted the runner's objects): it deletes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrun.cluster.base import Owner
from flowrun.controller.runner_objects import runner_name
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns

pytestmark = pytest.mark.controlplane


def finished(frs: FlowRuns, name: str) -> str:
    """A FlowRun as an operator leaves it when killed after the run ended, with a leftover
    runner ServiceAccount; the ServiceAccount's name."""
    body = {"apiVersion": "flowrun.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name, "namespace": frs.namespace,
                         "finalizers": ["flowrun.dev/finalizer"]},
            "spec": {"flow": {"tasks": [{"name": "a", "fn": "frtasks:add", "args": [1, 2]}]},
                     "executor": {"type": "Local"}}}  # fmt: skip
    frs.kubectl("create", "-f", "-", input=json.dumps(body))
    status: dict[str, Any] = {"phase": "Succeeded", "message": "Flow run succeeded."}
    frs.kubectl("patch", "flowrun", name, "-n", frs.namespace, "--subresource=status",
                "--type=merge", "-p", json.dumps({"status": status}))  # fmt: skip
    uid = (frs.get(name) or {})["metadata"]["uid"]
    account = runner_name(Owner("flowrun.dev/v1alpha1", "FlowRun", name, frs.namespace, uid))
    frs.kubectl("create", "serviceaccount", account, "-n", frs.namespace)
    return account


def test_a_restart_deletes_what_a_cut_short_run_left(
    start_operator: Any, own_frs: FlowRuns
) -> None:
    frs = own_frs
    account = finished(frs, "cut-short")

    def gone() -> bool:
        out = frs.kubectl("get", "serviceaccount", account, "-n", frs.namespace, check=False)
        return out.returncode != 0

    start_operator("-n", frs.namespace)  # the product path: no --allow-in-process
    wait_for(gone, timeout=120, what="the cut-short run's runner ServiceAccount deleted")
    assert frs.status("cut-short")["phase"] == "Succeeded"
