"""FlowRuns on the dev control plane: apply, read back, wait; task and spec shorthands.

The controller tests' operator watches namespaces named `fr-op-*` (`NS_PREFIX`); tests that run
an operator of their own use `fr-own-*` namespaces (`OWN_PREFIX`), which it does not watch.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from flowrun.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
FLOWS = ROOT / "tests" / "controller" / "flows"  # frtasks, frflows: put on the operator's path
NS_PREFIX = "fr-op-"  # watched by the shared operator
OWN_PREFIX = "fr-own-"  # for tests that run an operator of their own


class FlowRuns:
    """Apply FlowRuns in one namespace and read them back."""

    def __init__(self, kubectl: Any, namespace: str, tasks_dir: Path) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.tasks_dir = tasks_dir

    def apply(self, name: str, spec: dict[str, Any], *, server_side: bool = False) -> None:
        """`kubectl apply`; client-side apply drops null values (`default: null`), server-side
        apply keeps them, as GitOps tools do."""
        body = {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": "FlowRun",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        how = ["--server-side"] if server_side else []
        self.kubectl("apply", *how, "-f", "-", input=json.dumps(body))

    def apply_template(self, name: str, flow: dict[str, Any]) -> None:
        """A FlowTemplate holding `flow`, applied server-side (as GitOps tools do)."""
        body = {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": "FlowTemplate",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"flow": flow},
        }
        self.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))

    def get(self, name: str) -> dict[str, Any] | None:
        out = self.kubectl("get", "flowrun", name, "-n", self.namespace, "-o", "json", check=False)
        if out.returncode != 0:
            return None
        found: dict[str, Any] = json.loads(out.stdout)
        return found

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def wait_phase(self, name: str, *phases: str, timeout: float = 90) -> dict[str, Any]:
        wanted = phases or ("Succeeded", "Failed", "Cancelled")

        def check() -> dict[str, Any] | None:
            status = self.status(name)
            return status if status.get("phase") in wanted else None

        result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{name} in {wanted}")
        return result

    def companion(self, name: str, phase: str = "Succeeded", timeout: float = 60) -> dict[str, Any]:
        """The run's live-status ConfigMap once it holds `phase`. It is written right after each
        write of the FlowRun (the end too), so a reader of the FlowRun's end can be first."""

        def check() -> dict[str, Any] | None:
            uid = (self.get(name) or {}).get("metadata", {}).get("uid")
            for item in self.kubectl.json("get", "configmaps", "-n", self.namespace)["items"]:
                refs = item["metadata"].get("ownerReferences") or [{}]
                mine = item["metadata"]["name"].endswith("-status") and refs[0].get("uid") == uid
                if mine and (item.get("data") or {}).get("phase") == phase:
                    return dict(item)
            return None

        found: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{name}'s companion {phase}")
        return found

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get",
            "events",
            "-n",
            self.namespace,
            "--field-selector",
            f"involvedObject.name={name}",
            "-o",
            "json",
        )
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return items

    def event_reasons(self, name: str) -> set[str]:
        return {e["reason"] for e in self.events(name)}

    def assert_waited_for_template_until_deadline(self, name: str, seconds: int) -> None:
        """The run said its FlowTemplate was missing, then ended Failed at its deadline."""
        status = self.wait_phase(name, timeout=120)
        assert status["phase"] == "Failed", status
        expected = f"The run exceeded spec.activeDeadlineSeconds ({seconds}s) and was stopped."
        assert status["message"] == expected, status
        assert "TemplateNotFound" in self.event_reasons(name)

    def runs(self, key: str) -> int:
        folder = self.tasks_dir / f"runs-{key}"
        return len(list(folder.iterdir())) if folder.exists() else 0

    def open_gate(self, key: str) -> None:
        (self.tasks_dir / f"gate-{key}").write_text("")


def task(name: str, fn: str, *args: Any, **options: Any) -> dict[str, Any]:
    """An inline task dict: `task("a", "frtasks:add", 1, 2, maxRetries=1)`."""
    entry: dict[str, Any] = {"name": name, "fn": f"frtasks:{fn}", **options}
    if args:
        entry["args"] = list(args)
    return entry


def local_spec(tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A FlowRun spec running on the Local Dask provider."""
    flow = {"tasks": tasks, **spec.pop("flow", {})}
    executor = spec.pop("executor", {"type": "Dask", "dask": {"cluster": "Local"}})
    return {"flow": flow, "executor": executor, **spec}


def kubernetes_executor(image: str, workers: int = 2, **dask: Any) -> dict[str, Any]:
    """The Kubernetes provider: the run's scheduler and workers are Pods of `image`."""
    return {
        "type": "Dask",
        "dask": {"cluster": "Kubernetes", "image": image, "workers": workers, **dask},
    }


def squares_spec(executor: dict[str, Any]) -> dict[str, Any]:
    """A mapped flow whose `total` is 30, with `host`: the hostname of the place a task ran."""
    return {
        "flow": {
            "tasks": [
                {"name": "inc", "fn": "operator:add", "args": [{"value": [1, 2, 3]}, [4]]},
                {"name": "square", "fn": "operator:pow", "args": [{"task": "inc", "map": True}, 2]},
                {"name": "total", "fn": "builtins:sum", "args": [{"task": "square"}]},
                {"name": "host", "fn": "socket:gethostname"},
            ]
        },
        "returnTasks": ["total", "host"],
        "executor": executor,
    }


def crd_established(kubectl: Any, name: str) -> bool:
    out = kubectl("get", "crd", name, "-o", "json", check=False)
    if out.returncode != 0:
        return False
    conditions = json.loads(out.stdout).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def make_namespace(kubectl: Any, prefix: str = NS_PREFIX) -> str:
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    return name
