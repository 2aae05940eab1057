# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""Operator benchmarks on a real local control plane (flowrun.dev) and a real operator process.

Measures, with the Local Dask provider (a LocalCluster per run, inside the operator):
- apply-to-Succeeded latency of a one-task FlowRun (median, p95), one run at a time;
- wall time for 100 FlowRuns applied at once, and the operator's peak RSS meanwhile;
- API requests the operator makes per FlowRun as a function of the flow's task count
  (from the API server's own `apiserver_request_total`, by resource and verb);
- `status` size of a finished 1,000-task and 10,000-task FlowRun.

    python benchmarks/operator.py            # prints a table (takes a few minutes)
"""

from __future__ import annotations

import sys

# Run as `python benchmarks/operator.py`, this file's folder comes first on sys.path and the file
# would shadow the stdlib `operator` module (imported by json, enum, ...): drop that entry first.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
NS = "bench"
FN = "flowrun.examples.etl:hello"


class Bench:
    def __init__(self, plane: ControlPlane, tmp: Path) -> None:
        self.plane = plane
        self.tmp = tmp
        self.kubectl_base = [str(plane.bin_dir / "kubectl"), f"--kubeconfig={plane.kubeconfig}"]
        self.operator: OperatorProcess | None = None

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            [*self.kubectl_base, *args], input=stdin, text=True, capture_output=True, check=True
        )
        return out.stdout

    def start_operator(self, *extra: str) -> None:
        self.operator = OperatorProcess(
            self.plane.kubeconfig,
            self.tmp / "operator.log",
            ["--allow-in-process", "-n", NS, *extra],
            metrics=False,
        ).start()

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()

    def rss_mib(self) -> float:
        assert self.operator is not None
        return self.operator.rss_mib()

    def apply(self, items: list[dict[str, Any]]) -> None:
        # `create` (not apply): no last-applied annotation doubling a large spec.
        self.kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                            "items": items}))  # fmt: skip

    def flowruns(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(
            self.kubectl("get", "flowruns", "-n", NS, "-o", "json")
        )["items"]
        return items

    def phase(self, name: str) -> str | None:
        return (
            self.kubectl("get", "flowrun", name, "-n", NS, "-o", "jsonpath={.status.phase}").strip()
            or None
        )

    def delete_all(self) -> None:
        self.kubectl("delete", "flowruns", "--all", "-n", NS, "--timeout=300s")

    def requests(self) -> dict[tuple[str, str], int]:
        """apiserver_request_total summed by (resource, verb)."""
        text = self.kubectl("get", "--raw", "/metrics")
        counts: dict[tuple[str, str], int] = {}
        pattern = re.compile(r"^apiserver_request_total\{(.*)\} (\S+)$")
        for line in text.splitlines():
            m = pattern.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            key = (labels.get("resource", ""), labels.get("verb", ""))
            counts[key] = counts.get(key, 0) + int(float(m.group(2)))
        return counts


def flowrun(name: str, n_tasks: int, executor: dict[str, Any] | None = None) -> dict[str, Any]:
    tasks = [{"name": f"t{i}", "fn": FN, "args": [str(i)]} for i in range(n_tasks)]
    return {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "flow": {"tasks": tasks},
            "executor": executor or {"type": "Dask", "dask": {"cluster": "Local"}},
        },
    }


def latency(bench: Bench, runs: int = 20) -> tuple[float, float]:
    seconds = []
    for i in range(runs):
        name = f"lat-{i}"
        started = time.monotonic()
        bench.apply([flowrun(name, 1)])
        wait_for(lambda name=name: bench.phase(name) == "Succeeded", timeout=60, interval=0.02)  # type: ignore[misc]
        seconds.append(time.monotonic() - started)
    bench.delete_all()
    seconds.sort()
    return statistics.median(seconds), seconds[int(0.95 * (len(seconds) - 1))]


def concurrent(bench: Bench, n: int = 100) -> tuple[float, float, float]:
    idle = bench.rss_mib()
    peak = idle
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, bench.rss_mib())
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    bench.apply([flowrun(f"many-{i:03d}", 1) for i in range(n)])

    def done() -> bool:
        runs = bench.flowruns()
        ok = [r for r in runs if (r.get("status") or {}).get("phase") == "Succeeded"]
        return len(ok) == n

    wait_for(done, timeout=600, interval=0.25)
    took = time.monotonic() - started
    stop.set()
    sampler.join()
    bench.delete_all()
    return took, idle, peak


def requests_per_run(bench: Bench, sizes: tuple[int, ...]) -> list[tuple[int, int, int]]:
    rows = []
    for size in sizes:
        name = f"req-{size}"
        before = bench.requests()
        bench.apply([flowrun(name, size)])
        wait_for(lambda name=name: bench.phase(name) == "Succeeded", timeout=600, interval=0.5)  # type: ignore[misc]
        time.sleep(1.0)  # let the last Events be posted before counting (not an assertion)
        after = bench.requests()
        diff = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        patches = diff.get(("flowruns", "PATCH"), 0)
        events = diff.get(("events", "POST"), 0) + diff.get(("events", "PATCH"), 0)
        rows.append((size, patches, events))
        bench.delete_all()
    return rows


def status_bytes(bench: Bench, sizes: tuple[int, ...]) -> list[tuple[int, int, int, float]]:
    rows = []
    for size in sizes:
        name = f"size-{size}"
        started = time.monotonic()
        bench.apply([flowrun(name, size, executor={"type": "Local"})])
        wait_for(lambda name=name: bench.phase(name) == "Succeeded", timeout=900, interval=0.5)  # type: ignore[misc]
        took = time.monotonic() - started
        run = json.loads(bench.kubectl("get", "flowrun", name, "-n", NS, "-o", "json"))
        status = run["status"]
        rows.append((size, len(json.dumps(status)), status.get("tasksOmitted", 0), took))
        bench.delete_all()
    return rows


def report(bench: Bench) -> None:
    """Measure and print each figure as soon as it is known (a table in the end)."""
    cores = os.cpu_count()
    print(f"\nflowrun operator benchmarks ({cores} cores; Local Dask provider)\n", flush=True)
    print("| measure | value |")
    print("|---|---|", flush=True)
    median, p95 = latency(bench)
    print(f"| apply -> Succeeded, one-task FlowRun, median | {median:.2f} s |")
    print(f"| apply -> Succeeded, one-task FlowRun, p95 | {p95:.2f} s |", flush=True)
    took, idle, peak = concurrent(bench)
    print(f"| 100 FlowRuns applied at once, all Succeeded | {took:.1f} s |")
    print(f"| operator RSS idle / peak during the 100 runs | {idle:.0f} / {peak:.0f} MiB |")
    for size, nbytes, omitted, secs in status_bytes(bench, (1000, 10000)):
        print(f"| status of a {size:,}-task FlowRun (executor Local) | {nbytes / 1024:.0f} KiB"
              f" ({omitted} tasks omitted; ran in {secs:.0f} s) |", flush=True)  # fmt: skip
    print("\n| tasks in the flow | FlowRun PATCHes (status + kopf) | Event writes |")
    print("|---|---|---|", flush=True)
    for size, patches, events in requests_per_run(bench, (1, 10, 100, 1000)):
        print(f"| {size} | {patches} | {events} |", flush=True)


def main() -> int:
    bins = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        plane = ControlPlane(Path(tmp) / "plane", bin_dir=bins)
        plane.start()
        bench = Bench(plane, Path(tmp))
        try:
            bench.kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
            wait_for(
                lambda: "Established=True" in bench.kubectl(
                    "get", "crd", "flowruns.flowrun.dev", "-o",
                    "jsonpath={range .status.conditions[*]}{.type}={.status} {end}",
                ),
                timeout=60,
                interval=0.05,
            )  # fmt: skip
            bench.kubectl("create", "namespace", NS)
            bench.start_operator()
            report(bench)
        finally:
            bench.stop_operator()
            plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
