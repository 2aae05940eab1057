"""Secret values masked in the output of the Dask worker Pods on the product path: a FlowRun
whose parameter comes from a Secret (`parametersFrom`) runs on a Kubernetes cluster of the
dask-kubernetes operator; its tasks, on a worker Pod, print the value, log it (through a handler
the worker made at its start, before the run's masker reached it), raise an exception that
spells it, and hand it to a subprocess that writes it to the worker's descriptor 2. The worker
Pods' and the runner Pod's logs (`kubectl logs`), the FlowRun's status and its Events show `***`
there, never the value.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from flowrun.dev.helmop import DASK_CLUSTER_LABEL, HelmOperator
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, kubernetes_executor

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

MASK = "***"
# Holds the run (and so its Pods and their logs) until the test has read the logs: it ends when
# the test creates the file in the worker Pod, or after 4 minutes (a test gone wrong).
GATE = "for i in $(seq 240); do [ -f /tmp/{0} ] && break; sleep 1; done; echo {0}"
# The tasks that were on the deleted worker (waiting ones too) run again on its replacement.
AGAIN = {"maxRetries": 1, "retryDelaySeconds": 5}
WORKERS = f"{DASK_CLUSTER_LABEL},dask.org/component=worker"


@pytest.fixture
def frs(node_operator: HelmOperator, restricted_namespace: str, tmp_path: Any) -> FlowRuns:
    return FlowRuns(node_operator.kubectl, restricted_namespace, tmp_path)


def secret_spec(image: str) -> dict[str, Any]:
    """Three tasks spell the secret on the first worker; `gate` holds the run until the test
    deleted that worker's Pod, and runs again (its retry) on the Pod that replaced it, which
    joined the cluster after the run's masker was registered: `late` prints it there."""
    token = {"parameter": "token"}
    tasks = [
        {"name": "printed", "fn": "builtins:print", "args": ["printed:", token]},
        # distributed.worker's logger writes through the handler `dask worker` made at start.
        {
            "name": "logged",
            "fn": "distributed.worker:logger.warning",
            "args": ["logged: %s", token],
        },
        # ValueError: invalid literal for int() with base 10: '<the value>'
        {"name": "raised", "fn": "builtins:int", "args": [token]},
        # A subprocess, not Python, writes it to the worker's descriptor 2: the shell finds no
        # such command ("sh: 1: <the value>: not found").
        {"name": "shelled", "fn": "os:system", "args": [token]},
        {
            "name": "gate",
            "fn": "subprocess:getoutput",
            "args": [GATE.format("go")],
            "upstream": ["printed", "logged", "shelled"],
            **AGAIN,
        },
        {
            "name": "late",
            "fn": "builtins:print",
            "args": ["late:", token],
            "upstream": ["gate"],
            **AGAIN,
        },
        {
            "name": "gate2",
            "fn": "subprocess:getoutput",
            "args": [GATE.format("go2")],
            "upstream": ["late"],
            **AGAIN,
        },
    ]
    return {
        "flow": {"parameters": [{"name": "token", "required": True}], "tasks": tasks},
        "parametersFrom": [{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
        "executor": kubernetes_executor(image, workers=1),
        "activeDeadlineSeconds": 900,
    }


def logs(frs: FlowRuns, pod: str) -> str:
    out = frs.kubectl("logs", pod, "-n", frs.namespace, "--all-containers", check=False)
    return str(out.stdout)


def pod_names(op: HelmOperator, ns: str, selector: str) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in op.pods(ns, selector)
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def worker_logs_with(
    op: HelmOperator, frs: FlowRuns, wanted: tuple[str, ...], open_gate: str = ""
) -> dict[str, str]:
    """The running worker Pods' logs once `wanted` are all in them (a loaded machine may take a
    while to start a Pod, run the tasks and ship their lines); `open_gate` meanwhile."""

    def check() -> dict[str, str] | None:
        texts = {}
        for pod in pod_names(op, frs.namespace, WORKERS):
            if open_gate:
                frs.kubectl("exec", pod, "-n", frs.namespace, "--", "touch", open_gate, check=False)
            texts[pod] = logs(frs, pod)
        joined = "\n".join(texts.values())
        return texts if all(w in joined for w in wanted) else None

    try:
        found: dict[str, str] = wait_for(check, timeout=420, what=f"{wanted} in the worker logs")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{op.diagnosis(frs.namespace)}") from None
    return found


def runner_log_to_the_end(frs: FlowRuns, runner: str) -> tuple[dict[str, Any], str]:
    """The run's final status, and its runner Pod's log read as late as could be."""
    last = logs(frs, runner)

    def ended() -> dict[str, Any] | None:
        nonlocal last
        last = logs(frs, runner) or last  # the Pod goes soon after the run ends
        status = frs.status("masked")
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status: dict[str, Any] = wait_for(ended, timeout=300, what="the run to end")
    return status, last


def test_worker_pods_mask_what_tasks_print_log_and_raise_also_one_that_joined_later(
    node_operator: HelmOperator, frs: FlowRuns
) -> None:
    op, ns = node_operator, frs.namespace
    secret = "wk-s3cr3t-" + uuid.uuid4().hex
    frs.kubectl("create", "secret", "generic", "creds", "-n", ns, f"--from-literal=token={secret}")
    frs.apply("masked", secret_spec(op.image))
    shelled = f"{MASK}: not found"
    wanted = (f"printed: {MASK}", f"logged: {MASK}", f"base 10: '{MASK}'", "Traceback", shelled)
    first = worker_logs_with(op, frs, wanted)
    [runner] = pod_names(op, ns, "flowrun.dev/runner")
    [scheduler] = pod_names(op, ns, f"{DASK_CLUSTER_LABEL},dask.org/component=scheduler")
    running = frs.status("masked")
    op.kubectl("delete", "pod", "-n", ns, *first, "--wait=false")
    later = worker_logs_with(op, frs, (f"late: {MASK}",), open_gate="/tmp/go")
    assert not set(later) & set(first), (later, first)  # a Pod that joined after the deletion
    for pod in later:
        frs.kubectl("exec", pod, "-n", ns, "--", "touch", "/tmp/go2", check=False)
    scheduler_log = logs(frs, scheduler)  # it saw the tasks' arguments go by
    status, runner_log = runner_log_to_the_end(frs, runner)
    assert status["phase"] == "Failed", status
    assert status["message"] == "Some reference tasks failed.", status
    raised = status["tasks"]["raised"]
    assert raised["state"] == "Failed", raised
    assert f"base 10: '{MASK}'" in raised["message"], raised
    assert status["tasks"]["late"]["state"] == "Success", status
    failed = [e["message"] for e in frs.events("masked") if e["reason"] == "TaskFailed"]
    assert any(MASK in m for m in failed), failed
    for where, text in {
        **first,
        **later,
        runner: runner_log,
        scheduler: scheduler_log,
        "status while running": json.dumps(running),
        "status": json.dumps(frs.get("masked")),
        "events": json.dumps(frs.events("masked")),
    }.items():
        assert secret not in text, (where, text[-3000:])
        assert secret[:12] not in text, (where, text[-3000:])  # nor a piece of it
    op.wait_clean(ns)
