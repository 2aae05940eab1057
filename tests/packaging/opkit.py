"""The operator as a subprocess under a given kubeconfig, and polling helpers (packaging tests).

`KUBECONFIG` is process-global, so running the operator under the chart's ServiceAccount token
means a separate process (`flowrun.dev.operator_process`, stopped by its own PID only).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for

TERMINAL = ("Succeeded", "Failed", "Cancelled")

# A run on the runner path (no --allow-in-process) whose Dask scheduler is nowhere: without a
# kubelet its runner never starts, so the run ends by its deadline and its objects are deleted.
RUNNER_SPEC = {
    "flow": {"tasks": [{"name": "one", "fn": "operator:add", "args": [1, 2]}]},
    "executor": {
        "type": "Dask",
        "dask": {"cluster": "External", "address": "tcp://192.0.2.1:8786",
                 "image": "registry.invalid/flows:1"},
    },
    "activeDeadlineSeconds": 2,
}  # fmt: skip


class Operator(OperatorProcess):
    """`flowrun operator ARGS` with KUBECONFIG=kubeconfig, in `workdir`, without the caller's
    FLOWRUN_* settings (the shared harness, `flowrun.dev.operator_process`)."""

    def __init__(self, kubeconfig: Path, workdir: Path, args: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
        super().__init__(
            kubeconfig,
            workdir / "operator.log",
            ["--status-interval=0.5", *args],
            env=env,
            inherit_env=False,
            cwd=workdir,
        )


def flowrun_manifest(name: str, namespace: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": "FlowRun",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def local_spec(tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An inline flow on the Local Dask provider (in-process: needs --allow-in-process)."""
    flow = {"tasks": tasks, **extra.pop("flow", {})}
    return {"flow": flow, "executor": {"type": "Dask", "dask": {"cluster": "Local"}}, **extra}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def can_i(kubectl: Any, kubeconfig: Path, *args: str) -> bool:
    out = kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
    return out.stdout.strip() == "yes"


def forbidden(kubectl: Any, kubeconfig: Path, *args: str) -> bool:
    out = kubectl(*args, kubeconfig=kubeconfig, check=False)
    return out.returncode != 0 and "forbidden" in out.stderr.lower()


def terminal(kubectl: Any, name: str, ns: str) -> dict[str, Any] | None:
    obj = kubectl.json("get", "flowrun", name, "-n", ns)
    return obj if (obj.get("status") or {}).get("phase") in TERMINAL else None


def events_of(kubectl: Any, name: str, ns: str) -> list[dict[str, Any]]:
    out = kubectl.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")
    items: list[dict[str, Any]] = out["items"]
    return items


def assert_no_forbidden(
    log: str, *, namespaces: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> None:
    """No RBAC denial in the operator's log about `namespaces` or cluster-scoped resources.

    A cluster-wide operator also sees other suites' leftover FlowRuns in this shared control
    plane; denials about those namespaces are theirs to explain, not this chart's.
    """

    def relevant(line: str) -> bool:
        if 'in the namespace "' not in line:
            return True
        return any(f'in the namespace "{ns}"' in line for ns in namespaces)

    bad = [
        line
        for line in log.splitlines()
        if ("forbidden" in line.lower() or " 403" in line)
        and relevant(line)
        and not any(a in line for a in allowed)
    ]
    assert not bad, "the operator hit RBAC denials:\n" + "\n".join(bad[:20])


def finished(
    kubectl: Any, operator: Operator, name: str, ns: str, *, timeout: float = 120
) -> dict[str, Any]:
    try:
        result: dict[str, Any] = wait_for(
            lambda: terminal(kubectl, name, ns), timeout=timeout, what=f"FlowRun {name} to finish"
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\noperator log:\n{operator.log_text()[-4000:]}") from None
    return result
