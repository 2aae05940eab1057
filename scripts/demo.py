"""`make demo`: the product's main job on a fresh machine.

Brings the real local control plane up (flowrun.dev), installs the FlowRun CRD, runs the operator
(`--allow-in-process`: the examples use the Local Dask provider, a LocalCluster inside the
operator), applies every manifest in examples/, waits for them to finish, shows
`kubectl get flowruns` and one FlowRun's status, and cleans everything up again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane, free_port
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


def start_operator(kubeconfig: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "flowrun.cli", "operator", "--allow-in-process",
           "-n", NAMESPACE, f"--liveness-port={port}"]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def ready() -> bool:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the operator exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    wait_for(ready, timeout=60, interval=0.5, what="the operator to be ready")
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


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
    operator, _ = start_operator(plane.kubeconfig, tmp / "operator.log")
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
        stop(operator)
    return 0 if ok else 1


def main() -> int:
    bins = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="flowrun-demo-") as tmp:
        plane = ControlPlane(Path(tmp) / "plane", bin_dir=bins)
        started = time.monotonic()
        print("== Starting a real local control plane (etcd, kube-apiserver, controller-manager)")
        plane.start()
        print(f"control plane up at {plane.server} in {time.monotonic() - started:.1f} s")
        try:
            return run_demo(plane, Path(tmp))
        except TimeoutError as err:
            raise SystemExit(f"demo: {err}") from None
        finally:
            plane.stop()
            print("control plane stopped")


if __name__ == "__main__":
    sys.exit(main())
