"""The dev node's cost against the API-only control plane it extends (baseline), in one invocation.

Measures: start-up time (`ControlPlane.start` vs `Node.start`, warm binaries and image), memory at
idle (resident set of every recorded process, plus the node cgroup's usage, which covers
containerd's shims), and the time from `kubectl apply` of a one-line Python Pod to its Succeeded.
Needs root (the node). Run as `python benchmarks/node.py`; it prints a table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flowrun.dev import build, image
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.node import Node
from flowrun.dev.waiting import wait_for


def rss_mib(pids: dict[str, int]) -> float:
    total = 0
    for pid in pids.values():
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def cgroup_mib(name: str) -> float:
    usage = Path("/sys/fs/cgroup/memory") / name / "memory.usage_in_bytes"
    return int(usage.read_text()) / (1 << 20) if usage.exists() else 0.0


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
        plane_rss = rss_mib(plane.state.pids)
        plane.stop()

        node = Node(Path(tmp) / "node", bin_dir=bins, images=(built.archive,))
        t0 = time.monotonic()
        node.start()
        node_up = time.monotonic() - t0
        try:
            time.sleep(10)
            node_rss = rss_mib(node.plane.state.pids)
            node_cgroup = cgroup_mib(node.state.cgroup)
            latency = pod_latency(node, built.name)
        finally:
            node.stop()
    rows = [
        ("start-up, s", plane_up, node_up),
        ("idle RSS of recorded processes, MiB", plane_rss, node_rss),
    ]
    print(f"{'metric':<40} {'API-only plane':>15} {'plane + node':>15} {'ratio':>8}")
    for name, base, value in rows:
        print(f"{name:<40} {base:>15.1f} {value:>15.1f} {value / base:>7.1f}x")
    print(f"{'node cgroup memory (kubelet, containerd...), MiB':<56} {node_cgroup:>15.1f}")
    print(f"{'one-line Python Pod, apply -> Succeeded, s':<56} {latency:>15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
