# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""The product's own path on a real node: the Helm-installed operator, FlowRuns on real Pods.

Measures (root only; the node is `flowrun dev up --node`'s, started here and stopped after):
- apply -> Succeeded of a one-task FlowRun on the Kubernetes provider (1 worker), median and p95,
  with a breakdown from what a poller saw (every 0.2 s): DaskCluster created, scheduler Pod Ready,
  worker Pod Ready, runner Pod Running, FlowRun Succeeded, DaskCluster gone;
- the baseline in the same invocation: `executor: Local` in the runner Pod (no Dask cluster);
- N FlowRuns on the Kubernetes provider applied at once: wall time, the node's peak memory
  (its memory cgroup's peak: memory.peak on cgroup v2, memory.max_usage_in_bytes on v1, reset
  before the runs) against its usage just before them, the operator container's peak RSS (VmHWM).

    sudo .venv/bin/python benchmarks/product_path.py [--runs 5] [--concurrent 20]
"""

from __future__ import annotations

import sys

# benchmarks/operator.py would shadow the stdlib `operator` module: drop this folder from the path.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flowrun.dev import build, image
from flowrun.dev.node import Node
from flowrun.dev.nodehost import CGROUP_FS
from flowrun.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "flowrun-operator"
SYSTEM, NS = "flowrun-system", "bench"
RESTRICTED = [f"pod-security.kubernetes.io/{m}=restricted" for m in ("enforce", "warn", "audit")]
STEPS = ("cluster", "scheduler", "worker", "runner", "succeeded", "deleted")


class Bench:
    def __init__(self, node: Node, built: image.BuiltImage) -> None:
        self.node, self.built = node, built
        self.base = [f"--kubeconfig={node.kubeconfig}"]

    def run(self, tool: str, *args: str, stdin: str | None = None) -> str:
        argv = [str(self.node.bin_dir / tool), *self.base, *args]
        return subprocess.run(argv, input=stdin, text=True, capture_output=True, check=True).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run("kubectl", *args, "-o", "json"))

    def install(self) -> float:
        for ns in (SYSTEM, NS):
            self.run("kubectl", "create", "namespace", ns)
            self.run("kubectl", "label", "namespace", ns, *RESTRICTED)
        wait_for(lambda: self.json("get", "sa", "-n", NS)["items"], timeout=60, what="default SA")
        repo, tag = self.built.name.rsplit(":", 1)
        dask_repo, dask_tag = self.built.dask_operator.rsplit(":", 1)
        started = time.monotonic()
        self.run(
            "helm", "install", "flowrun", str(CHART), "-n", SYSTEM, "--wait", "--timeout", "5m",
            "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
            "--set", "daskOperator.enabled=true",
            "--set", f"dask-kubernetes-operator.image.name={dask_repo}",
            "--set", f"dask-kubernetes-operator.image.tag={dask_tag}",
        )  # fmt: skip
        return time.monotonic() - started

    def flowrun(self, name: str, executor: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": "FlowRun",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [1, 2]}]},
                "executor": executor,
            },
        }

    def kubernetes(self) -> dict[str, Any]:
        dask = {"cluster": "Kubernetes", "image": self.built.name, "workers": 1}
        return {"type": "Dask", "dask": dask}

    def apply(self, items: list[dict[str, Any]]) -> None:
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        self.run("kubectl", "create", "-f", "-", stdin=body)

    def snapshot(self) -> dict[str, Any]:
        """One look at everything the breakdown needs (three list calls)."""
        frs = self.json("get", "flowruns", "-n", NS)["items"]
        pods = self.json("get", "pods", "-n", NS)["items"]
        clusters = self.json("get", "daskclusters", "-n", NS)["items"]
        return {"frs": frs, "pods": pods, "clusters": clusters}

    def operator_peak_rss_mib(self) -> float:
        pods = self.json(
            "get", "pods", "-n", SYSTEM, "-l", "app.kubernetes.io/name=flowrun-operator"
        )
        name = pods["items"][0]["metadata"]["name"]
        status = self.run("kubectl", "exec", "-n", SYSTEM, name, "--", "cat", "/proc/1/status")
        [hwm] = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
        return int(hwm) / 1024

    def node_memory(self) -> NodeMemory:
        """The node's memory cgroup (every process and Pod of the node is in it)."""
        v2 = CGROUP_FS / self.node.state.cgroup
        if (v2 / "memory.peak").exists():
            return NodeMemory(v2 / "memory.current", v2 / "memory.peak", resettable=False)
        v1 = CGROUP_FS / "memory" / self.node.state.cgroup
        return NodeMemory(v1 / "memory.usage_in_bytes", v1 / "memory.max_usage_in_bytes")


class NodeMemory:
    """Usage and peak usage of a memory cgroup (page cache included, as the kernel counts it).

    cgroup v2: `memory.current` / `memory.peak` (peak since the node started). cgroup v1:
    `memory.usage_in_bytes` / `memory.max_usage_in_bytes`, whose peak is reset by writing 0, so
    it can be taken over one phase (the concurrent runs) only.
    """

    def __init__(self, current: Path, peak: Path, *, resettable: bool = True) -> None:
        self.current, self.peak, self.resettable = current, peak, resettable

    def reset_peak(self) -> None:
        if self.resettable:
            self.peak.write_text("0\n")

    def mib(self, path: Path) -> float:
        return int(path.read_text()) / (1 << 20) if path.exists() else float("nan")

    def describe(self) -> str:
        since = "since its reset before the runs" if self.resettable else "since the node started"
        return f"{self.peak.name} {since}"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def observe(bench: Bench, name: str, started: float, stop: threading.Event) -> dict[str, float]:
    """First time (s after apply) each step of `name` was seen."""
    seen: dict[str, float] = {}
    while not stop.is_set() and "deleted" not in seen:
        snap, now = bench.snapshot(), time.monotonic() - started
        mine = [p for p in snap["pods"] if p["metadata"]["name"].startswith(f"fr-{name}-")]
        runner = [
            p for p in snap["pods"] if "flowrun.dev/runner" in p["metadata"].get("labels", {})
        ]
        clusters = [c for c in snap["clusters"] if c["metadata"]["name"].startswith(f"fr-{name}-")]
        marks = {
            "cluster": bool(clusters),
            "scheduler": any("scheduler" in p["metadata"]["name"] and _ready(p) for p in mine),
            "worker": any("worker" in p["metadata"]["name"] and _ready(p) for p in mine),
            "runner": any(p["status"].get("phase") in ("Running", "Succeeded") for p in runner),
            "succeeded": any(
                f["metadata"]["name"] == name and f.get("status", {}).get("phase") == "Succeeded"
                for f in snap["frs"]
            ),
        }  # fmt: skip
        for key, hit in marks.items():
            if hit:
                seen.setdefault(key, now)
        if "succeeded" in seen and not marks["cluster"]:
            if "cluster" in seen:
                seen["deleted"] = now
            break
        time.sleep(0.2)
    return seen


def one(bench: Bench, name: str, executor: dict[str, Any]) -> tuple[float, dict[str, float]]:
    stop = threading.Event()
    started = time.monotonic()
    result: dict[str, float] = {}
    poller = threading.Thread(target=lambda: result.update(observe(bench, name, started, stop)))
    bench.apply([bench.flowrun(name, executor)])
    poller.start()
    wait_for(lambda: "succeeded" in result or bool(_phase(bench, name)), timeout=300)
    elapsed = time.monotonic() - started
    poller.join(timeout=120)
    stop.set()
    bench.run("kubectl", "delete", "flowrun", name, "-n", NS, "--wait=true", "--timeout=120s")
    return elapsed, result


def _phase(bench: Bench, name: str) -> str | None:
    out = bench.run("kubectl", "get", "flowrun", name, "-n", NS, "-o", "jsonpath={.status.phase}")
    phase = out.strip()
    if phase and phase != "Succeeded" and phase not in ("Pending", "Running"):
        raise RuntimeError(f"{name} ended {phase}")
    return phase if phase == "Succeeded" else None


def latency(bench: Bench, runs: int, executor: dict[str, Any], prefix: str) -> dict[str, Any]:
    totals, breakdowns = [], []
    for i in range(runs):
        elapsed, seen = one(bench, f"{prefix}-{i}", executor)
        totals.append(elapsed)
        breakdowns.append(seen)
    totals.sort()
    steps = {
        s: statistics.median([b[s] for b in breakdowns if s in b] or [float("nan")]) for s in STEPS
    }
    return {
        "median": statistics.median(totals),
        "p95": totals[int(0.95 * (len(totals) - 1))],
        **steps,
    }


def concurrent(bench: Bench, n: int) -> tuple[float, float]:
    """Wall time of `n` runs at once, and the node's memory usage (MiB) just before them."""
    memory = bench.node_memory()
    memory.reset_peak()
    before = memory.mib(memory.current)
    started = time.monotonic()
    bench.apply([bench.flowrun(f"c-{i}", bench.kubernetes()) for i in range(n)])

    def done() -> bool:
        phases = [
            f.get("status", {}).get("phase")
            for f in bench.json("get", "flowruns", "-n", NS)["items"]
        ]
        return all(p in ("Succeeded", "Failed", "Cancelled") for p in phases)

    wait_for(done, timeout=1800, interval=1)
    elapsed = time.monotonic() - started
    wait_for(lambda: not bench.snapshot()["clusters"], timeout=300, interval=1)
    return elapsed, before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=20)
    args = parser.parse_args()
    bins, built = build.ensure_built(), image.ensure_image()
    with tempfile.TemporaryDirectory(prefix="fr-bench-") as tmp:
        started = time.monotonic()
        node = Node(Path(tmp) / "node", bin_dir=bins, images=(built.archive,))
        node.start()
        try:
            up = time.monotonic() - started
            bench = Bench(node, built)
            install = bench.install()
            local = latency(bench, args.runs, {"type": "Local"}, "l")
            print("Local:", local, flush=True)
            k8s = latency(bench, args.runs, bench.kubernetes(), "k")
            print("Kubernetes:", k8s, flush=True)
            wall, before = concurrent(bench, args.concurrent)
            report(up, install, local, k8s, (wall, before), args, bench)
        finally:
            node.stop()
    return 0


def report(up: float, install: float, local: dict[str, Any], k8s: dict[str, Any],
           many: tuple[float, float], args: argparse.Namespace, bench: Bench) -> None:  # fmt: skip
    print(f"node up (warm) {up:.1f} s; helm install --wait {install:.1f} s; {args.runs} runs each")
    print("| apply -> Succeeded, one task | median s | p95 s | " + " | ".join(STEPS) + " |")
    print("|---|---:|---:|" + "---:|" * len(STEPS))
    for label, row in (
        ("Local in the runner Pod (baseline)", local),
        ("Kubernetes, 1 worker", k8s),
    ):
        cells = " | ".join(f"{row[s]:.1f}" for s in STEPS)
        print(f"| {label} | {row['median']:.2f} | {row['p95']:.2f} | {cells} |")
    print(f"Kubernetes / baseline (median): {k8s['median'] / local['median']:.2f}x")
    print(
        f"{args.concurrent} Kubernetes FlowRuns at once: {many[0]:.1f} s wall; operator peak RSS "
        f"{bench.operator_peak_rss_mib():.0f} MiB"
    )
    memory = bench.node_memory()
    peak = memory.mib(memory.peak)
    print(
        f"node memory: {many[1]:.0f} MiB before the runs, peak {peak:.0f} MiB during them "
        f"({peak / many[1]:.2f}x; {memory.describe()})"
    )


if __name__ == "__main__":
    sys.exit(main())
