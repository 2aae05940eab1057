# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""The dev node's cost against the API-only control plane it extends (baseline), in one invocation.

Measures: start-up time (`ControlPlane.start` vs `Node.start`, warm binaries and image), memory at
idle (resident set of every recorded process and of whatever else runs in the node's cgroup:
containerd's shims), and the time from `kubectl apply` of a one-line Python Pod to its Succeeded.
Needs root (the node). Run as `python benchmarks/node.py`; it prints a table.
"""

from __future__ import annotations

import sys

# As in operator.py: benchmarks/operator.py would shadow the stdlib `operator` module.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from flowrun.dev import build, image, nodehost
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.node import Node
from flowrun.dev.waiting import wait_for


def rss_mib(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def pod_latency(node: Node, image_name: str) -> float:
    kubectl = [str(node.bin_dir / "kubectl"), f"--kubeconfig={node.kubeconfig}"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bench"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": image_name, "args": ["python", "-c", "1"]}],
        },
    }
    started = time.monotonic()
    subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pod), text=True, check=True,
                   capture_output=True)  # fmt: skip

    def phase() -> str:
        out = subprocess.run([*kubectl, "get", "pod", "bench", "-o", "jsonpath={.status.phase}"],
                             capture_output=True, text=True, check=False)  # fmt: skip
        return out.stdout

    wait_for(lambda: phase() == "Succeeded", timeout=120, interval=0.1)
    return time.monotonic() - started


def main() -> int:
    if os.geteuid() != 0:
        print("the node needs root", file=sys.stderr)
        return 1
    bins = build.ensure_built()
    built = image.ensure_image()
    with tempfile.TemporaryDirectory(prefix="frb-") as tmp:
        plane = ControlPlane(Path(tmp) / "plane", bin_dir=bins)
        t0 = time.monotonic()
        plane.start()
        plane_up = time.monotonic() - t0
        time.sleep(10)
        plane_rss = rss_mib(set(plane.state.pids.values()))
        plane.stop()

        node = Node(Path(tmp) / "node", bin_dir=bins, images=(built.archive,))
        t0 = time.monotonic()
        node.start()
        node_up = time.monotonic() - t0
        try:
            time.sleep(10)
            # Recorded processes, plus what runs in the node's cgroup without a record (shims).
            pids = set(node.plane.state.pids.values()) | nodehost.cgroup_pids(node.state.cgroup)
            node_rss = rss_mib(pids)
            latency = pod_latency(node, built.name)
        finally:
            node.stop()
    rows = [
        ("start-up, s", plane_up, node_up),
        ("idle RSS of all its processes, MiB", plane_rss, node_rss),
    ]
    print(f"{'metric':<40} {'API-only plane':>15} {'plane + node':>15} {'ratio':>8}")
    for name, base, value in rows:
        print(f"{name:<40} {base:>15.1f} {value:>15.1f} {value / base:>7.1f}x")
    print(f"{'one-line Python Pod, apply -> Succeeded, s':<56} {latency:>15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
