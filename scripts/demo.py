"""`make demo`: the product's main job on a fresh machine.

As root, the product's own path on a real node (scripts/demo_node.py: the Helm-installed operator,
the examples as FlowRuns on the Kubernetes provider). Otherwise (a node needs root) the API-only
control plane: installs the FlowRun CRD, runs the operator with `--allow-in-process` (the
examples use the Local Dask provider, a LocalCluster inside the operator), applies every manifest
in examples/, waits for them to finish, shows `kubectl get flowruns` and one FlowRun's status,
and cleans everything up again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import demo_node  # scripts/ is on the path of `python scripts/demo.py`

from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.operator_process import OperatorExited, OperatorProcess
from flowrun.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "demo"
TERMINAL = {"Succeeded", "Failed", "Cancelled"}


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.base = [str(binary), f"--kubeconfig={kubeconfig}"]

    def __call__(self, *args: str, capture: bool = False, check: bool = True) -> str:
        out = subprocess.run([*self.base, *args], check=check, text=True, capture_output=capture)
        return out.stdout if capture else ""


def phases(kubectl: Kubectl) -> dict[str, str | None]:
    items = json.loads(kubectl("get", "flowruns", "-n", NAMESPACE, "-o", "json", capture=True))
    return {i["metadata"]["name"]: (i.get("status") or {}).get("phase") for i in items["items"]}


def run_demo(plane: ControlPlane, tmp: Path) -> int:
    kubectl = Kubectl(plane.bin_dir / "kubectl", plane.kubeconfig)
    print("\n== Installing the FlowRun CRD")
    kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
    # `kubectl wait` fails if asked before the CRD has any status yet; poll instead.
    wait_for(
        lambda: "Established=True" in kubectl(
            "get", "crd", "flowruns.flowrun.dev", "-o",
            "jsonpath={range .status.conditions[*]}{.type}={.status} {end}",
            capture=True, check=False,
        ),
        timeout=60,
        interval=0.5,
        what="the CRD to be established",
    )  # fmt: skip
    kubectl("create", "namespace", NAMESPACE)

    print("\n== Starting the operator (flowrun operator --allow-in-process)")
    args = ["--allow-in-process", "-n", NAMESPACE]
    operator = OperatorProcess(plane.kubeconfig, tmp / "operator.log", args, metrics=False)
    operator.start()
    try:
        print("\n== Applying the examples")
        examples = sorted((ROOT / "examples").glob("*.yaml"))
        for path in examples:
            kubectl("apply", "-n", NAMESPACE, "-f", str(path))
        started = time.monotonic()

        def all_done() -> dict[str, str | None] | None:
            seen = phases(kubectl)
            return seen if len(seen) == len(examples) and set(seen.values()) <= TERMINAL else None

        final = wait_for(all_done, timeout=300, interval=0.5, what="the FlowRuns to finish")
        print(f"\nall {len(final)} FlowRuns finished in {time.monotonic() - started:.1f} s\n")
        kubectl("get", "flowruns", "-n", NAMESPACE)
        print("\n== kubectl get flowrun etl -o yaml (status)")
        status = kubectl("get", "flowrun", "etl", "-n", NAMESPACE, "-o", "yaml", capture=True)
        print(status[status.index("status:") :] if "status:" in status else status)
        print("== kubectl get events (etl)")
        kubectl(
            "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.name=etl",
            "--sort-by=.lastTimestamp",
        )  # fmt: skip
        ok = all(phase == "Succeeded" for phase in final.values())
        print("\n== Cleaning up")
        kubectl("delete", "flowruns", "--all", "-n", NAMESPACE, "--timeout=60s")
    finally:
        operator.stop()
    return 0 if ok else 1


def main() -> int:
    if os.geteuid() == 0 and os.environ.get("FLOWRUN_DEMO") != "in-process":
        return demo_node.main()
    print("== Not root: a node needs network/mount namespaces and cgroups, so this demo runs the")
    print("   flows inside the operator on the API-only control plane (--allow-in-process)")
    bins = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="flowrun-demo-") as tmp:
        plane = ControlPlane(Path(tmp) / "plane", bin_dir=bins)
        started = time.monotonic()
        print("== Starting a real local control plane (etcd, kube-apiserver, controller-manager)")
        plane.start()
        print(f"control plane up at {plane.server} in {time.monotonic() - started:.1f} s")
        try:
            return run_demo(plane, Path(tmp))
        except (TimeoutError, OperatorExited) as err:
            raise SystemExit(f"demo: {err}") from None
        finally:
            plane.stop()
            print("control plane stopped")


if __name__ == "__main__":
    sys.exit(main())
