"""A finished FlowRun as an operator killed during its cleanup leaves it: status Succeeded, and
the runner's ServiceAccount and Job (the Job goes last in a cleanup) still there."""

from __future__ import annotations

import json
from typing import Any

from flowrun.cluster.base import Owner
from flowrun.controller.runner_objects import runner_name
from support.flowruns import FlowRuns

KINDS = ("serviceaccount", "job")
RUNNER_KINDS = ("rolebinding", "role", "serviceaccount", "job")  # all a runner run creates


def cut_short(frs: FlowRuns, name: str) -> str:
    """Make such a FlowRun `name`; the leftovers' name (the runner's)."""
    body = {"apiVersion": "flowrun.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name, "namespace": frs.namespace,
                         "finalizers": ["flowrun.dev/finalizer"]},
            "spec": {"flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [1, 2]}]},
                     "executor": {"type": "Local"}}}  # fmt: skip
    frs.kubectl("create", "-f", "-", input=json.dumps(body))
    status: dict[str, Any] = {"phase": "Succeeded", "message": "Flow run succeeded."}
    frs.kubectl("patch", "flowrun", name, "-n", frs.namespace, "--subresource=status",
                "--type=merge", "-p", json.dumps({"status": status}))  # fmt: skip
    uid = (frs.get(name) or {})["metadata"]["uid"]
    left = runner_name(Owner("flowrun.dev/v1alpha1", "FlowRun", name, frs.namespace, uid))
    container = {"name": "runner", "image": "registry.invalid/runner:1"}
    pod = {"spec": {"restartPolicy": "Never", "containers": [container]}}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": left, "namespace": frs.namespace},
        "spec": {"suspend": True, "template": pod},
    }
    frs.kubectl("create", "serviceaccount", left, "-n", frs.namespace)
    frs.kubectl("create", "-f", "-", input=json.dumps(job))
    return left


def remaining(frs: FlowRuns, left: str, kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Which of the leftovers (objects of `kinds` named `left`) are still there."""
    return [
        kind
        for kind in kinds
        if frs.kubectl("get", kind, left, "-n", frs.namespace, check=False).returncode == 0
    ]
