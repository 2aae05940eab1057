# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""What a running flow costs the operator: in-process (--allow-in-process) vs runner Pods.

On a real local control plane, one operator process at a time runs N FlowRuns whose one task
sleeps (executor Local). In-process, each flow's runner and task threads live in the operator;
on the product path the operator creates a runner Job per FlowRun and only follows it (no node
here: the runner Pods stay Pending, which costs the operator what a running runner costs it).
Prints the operator's RSS and thread count idle and with N runs, per run, and the ratio.

    python benchmarks/runner_path.py [N]      # default N=20; about a minute
"""

from __future__ import annotations

import sys

# Run as a script, this folder comes first on sys.path, and benchmarks/operator.py would shadow
# the stdlib `operator` module: drop that entry before anything imports it.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def kubectl(plane: ControlPlane, *args: str, stdin: str | None = None) -> str:
    cmd = [str(plane.bin_dir / "kubectl"), f"--kubeconfig={plane.kubeconfig}", *args]
    return subprocess.run(cmd, input=stdin, text=True, capture_output=True, check=True).stdout


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def flowrun(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "flow": {"tasks": [{"name": "nap", "fn": "time:sleep", "args": [600]}]},
            "executor": {"type": "Local"},
        },
    }


def started(plane: ControlPlane, ns: str, in_process: bool) -> int:
    """How many runs have their flow going: task Running (in-process) or a runner Job."""
    if in_process:
        items = json.loads(kubectl(plane, "get", "flowruns", "-n", ns, "-o", "json"))["items"]
        return sum(
            1
            for i in items
            if ((i.get("status") or {}).get("tasks") or {}).get("nap", {}).get("state") == "Running"
        )
    return len(json.loads(kubectl(plane, "get", "jobs", "-n", ns, "-o", "json"))["items"])


def measure(plane: ControlPlane, tmp: Path, n: int, *, in_process: bool) -> dict[str, float]:
    ns = f"bench-{'inproc' if in_process else 'runner'}"
    kubectl(plane, "create", "namespace", ns)
    args = ["-n", ns, f"--max-concurrent-runs={n}"]
    args += ["--allow-in-process"] if in_process else ["--default-image=registry.invalid/x:1"]
    operator = OperatorProcess(plane.kubeconfig, tmp / f"{ns}.log", args, metrics=False).start()
    try:
        time.sleep(3)
        idle_rss, idle_threads = operator.rss_mib(), threads(operator.pid)
        items = [flowrun(f"r{i}", ns) for i in range(n)]
        kubectl(
            plane,
            "create",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        wait_for(lambda: started(plane, ns, in_process) >= n, timeout=300, interval=1)
        time.sleep(5)  # a few rounds of following/status writing
        busy_rss, busy_threads = operator.rss_mib(), threads(operator.pid)
    finally:
        operator.stop(grace=30)
        kubectl(plane, "delete", "namespace", ns, "--wait=false")
    return {
        "idle_rss": idle_rss,
        "busy_rss": busy_rss,
        "idle_threads": idle_threads,
        "busy_threads": busy_threads,
    }


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    bins = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-runner-") as tmp:
        plane = ControlPlane(Path(tmp) / "plane", bin_dir=bins)
        plane.start()
        try:
            kubectl(plane, "apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
            wait_for(
                lambda: (
                    "Established=True"
                    in kubectl(
                        plane,
                        "get",
                        "crd",
                        "flowruns.flowrun.dev",
                        "-o",
                        "jsonpath={range .status.conditions[*]}{.type}={.status} {end}",
                    )
                ),
                timeout=60,
            )
            rows = {
                "in-process (baseline)": measure(plane, Path(tmp), n, in_process=True),
                "runner Pods": measure(plane, Path(tmp), n, in_process=False),
            }
        finally:
            plane.stop()
    print(f"operator cost of {n} running flows (one sleeping task each, executor Local)")
    print(
        f"{'path':<24}{'RSS idle':>10}{'RSS busy':>10}{'MiB/run':>9}{'thr idle':>10}"
        f"{'thr busy':>10}{'thr/run':>9}"
    )
    per_run: dict[str, float] = {}
    for name, m in rows.items():
        per_run[name] = (m["busy_rss"] - m["idle_rss"]) / n
        print(
            f"{name:<24}{m['idle_rss']:>10.1f}{m['busy_rss']:>10.1f}{per_run[name]:>9.2f}"
            f"{m['idle_threads']:>10.0f}{m['busy_threads']:>10.0f}"
            f"{(m['busy_threads'] - m['idle_threads']) / n:>9.2f}"
        )
    base = per_run["in-process (baseline)"]
    if base > 0:
        ratio = per_run["runner Pods"] / base
        print(f"memory per running flow, runner Pods vs in-process: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
