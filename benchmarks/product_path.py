# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""The product's own path on a real node: the Helm-installed operator, FlowRuns on real Pods.

Measures (root only; the node is `flowrun dev up --node`'s, started here and stopped after):
- apply -> Succeeded of a one-task FlowRun on the Kubernetes provider (1 worker), median and p95,
  with a breakdown from watches of FlowRuns, Pods and DaskClusters (each change timed as the API
  server sends it; seconds after `kubectl create`): DaskCluster created, runner Pod Running,
  worker and scheduler Pods Ready, FlowRun Running (written by the runner once started and
  connected), Succeeded, DaskCluster gone;
- the baseline in the same invocation: `executor: Local` in the runner Pod (no Dask cluster);
- N FlowRuns on the Kubernetes provider applied at once: wall time, the node's peak memory
  (its memory cgroup's peak: memory.peak on cgroup v2, memory.max_usage_in_bytes on v1, reset
  before the runs) against its usage just before them, the operator container's peak RSS (VmHWM).

    sudo .venv/bin/python benchmarks/product_path.py [--runs 5] [--concurrent 20 (0: skip)]
"""

from __future__ import annotations

import sys

# benchmarks/operator.py would shadow the stdlib `operator` module: drop this folder from the path.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import json
import math
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
STEPS = ("cluster", "runner", "worker", "scheduler", "flow running", "succeeded", "deleted")


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


class Watch:
    """One long-lived `kubectl get --watch` per kind: each change is timed when the API server
    sends it (no polling, which on 2 cores would itself slow the Pods being measured)."""

    KINDS = ("flowruns", "pods", "daskclusters")

    def __init__(self, bench: Bench) -> None:
        self.seen: dict[tuple[str, str], float] = {}  # (run, step) -> first monotonic time
        self.lock = threading.Lock()
        self.procs = []
        for kind in self.KINDS:
            argv = [str(bench.node.bin_dir / "kubectl"), *bench.base, "get", kind, "-n", NS,
                    "--watch", "--output-watch-events", "-o", "json"]  # fmt: skip
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(kind, proc), daemon=True).start()

    def _read(self, kind: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # with --output-watch-events: one event a line
            if line.strip():
                event = json.loads(line)
                self._take(kind, event["type"], event["object"], time.monotonic())

    def _take(self, kind: str, kind_of_event: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        marks: list[tuple[str, str]] = []
        if kind == "flowruns":
            phase = (obj.get("status") or {}).get("phase")
            if phase in ("Running", "Succeeded"):
                marks.append((name, "flow running"))
            if phase == "Succeeded":
                marks.append((name, "succeeded"))
        elif kind == "daskclusters":
            run = name.rsplit("-", 1)[0].removeprefix("fr-")
            marks.append((run, "deleted" if kind_of_event == "DELETED" else "cluster"))
        else:
            run, _, rest = name.removeprefix("fr-").partition("-")
            role = rest.split("-", 2)[1] if rest.count("-") >= 1 else ""
            if role == "runner" and obj["status"].get("phase") in ("Running", "Succeeded"):
                marks.append((run, "runner"))
            elif role in ("scheduler", "default") and _ready(obj):
                marks.append((run, "scheduler" if role == "scheduler" else "worker"))
        with self.lock:
            for mark in marks:
                self.seen.setdefault(mark, now)

    def steps(self, run: str, started: float) -> dict[str, float]:
        with self.lock:
            return {step: t - started for (r, step), t in self.seen.items() if r == run}

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=10)


def one(
    bench: Bench, watch: Watch, name: str, executor: dict[str, Any]
) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    bench.apply([bench.flowrun(name, executor)])
    wait_for(lambda: "succeeded" in watch.steps(name, started) or bool(_phase(bench, name)),
             timeout=300, interval=0.5, what=f"{name} Succeeded")  # fmt: skip
    elapsed = watch.steps(name, started).get("succeeded", time.monotonic() - started)
    if executor.get("type") == "Dask":
        wait_for(lambda: "deleted" in watch.steps(name, started), timeout=120, what="cluster gone")
    bench.run("kubectl", "delete", "flowrun", name, "-n", NS, "--wait=true", "--timeout=120s")
    return elapsed, watch.steps(name, started)


def _phase(bench: Bench, name: str) -> str | None:
    out = bench.run("kubectl", "get", "flowrun", name, "-n", NS, "-o", "jsonpath={.status.phase}")
    phase = out.strip()
    if phase and phase != "Succeeded" and phase not in ("Pending", "Running"):
        raise RuntimeError(f"{name} ended {phase}")
    return phase if phase == "Succeeded" else None


def latency(
    bench: Bench, watch: Watch, runs: int, executor: dict[str, Any], prefix: str
) -> dict[str, Any]:
    totals, breakdowns = [], []
    for i in range(runs):
        elapsed, seen = one(bench, watch, f"{prefix}{i}", executor)
        totals.append(elapsed)
        breakdowns.append(seen)
    totals.sort()
    steps = {
        s: statistics.median([b[s] for b in breakdowns if s in b] or [float("nan")]) for s in STEPS
    }
    return {
        "median": statistics.median(totals),
        "p95": totals[math.ceil(0.95 * len(totals)) - 1],  # nearest rank: the slowest of < 20
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
            watch = Watch(bench)
            try:
                local = latency(bench, watch, args.runs, {"type": "Local"}, "l")
                print("Local:", local, flush=True)
                k8s = latency(bench, watch, args.runs, bench.kubernetes(), "k")
                print("Kubernetes:", k8s, flush=True)
            finally:
                watch.close()
            many = concurrent(bench, args.concurrent) if args.concurrent else (0.0, 0.0)
            report(up, install, local, k8s, many, args, bench)
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
    print("issue 12's targets (medians): Kubernetes <= 5 s, Local in the runner Pod <= 2 s")
    if not args.concurrent:
        return
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
