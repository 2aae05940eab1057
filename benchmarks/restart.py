# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""An operator restart over many finished FlowRuns, on a real local control plane.

A restarted operator meets every FlowRun again (kopf spawns a daemon per object). A finished run
only needs a look for a DaskCluster its cleanup may have left behind (operator killed mid-way),
and only if it ran on a Kubernetes Dask cluster that it got. This measures, for a restart:

- how long after its start the operator still asks the API server about DaskClusters (the
  sweep), and how many such requests it makes (the API server's own `apiserver_request_total`;
  dask-kubernetes' CRDs are installed, as for the Kubernetes provider);
- how long a new one-task FlowRun applied right after the restart takes to succeed.

Each is measured over an empty namespace (the baseline) and over N finished FlowRuns: a third
with executor Local, a third on a Local Dask cluster, a third on a Kubernetes Dask cluster;
their status names the cluster and says it was deleted at the run's end, except for one run in
ten whose cleanup was cut short (its operator was killed): those are the ones to sweep. No node
is needed (the objects are gone). The ratio is N finished runs / empty.

    python benchmarks/restart.py                  # N=300, the in-process path
    python benchmarks/restart.py --product-path   # runner Pods: what their cleanup asks for
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import dask_kubernetes

from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
NS = "restart"
FINALIZER = "flowrun.dev/finalizer"
QUIET = 10.0  # seconds without a DaskCluster request: the sweep is over
DASK_CRDS = (
    Path(dask_kubernetes.__file__).parent / "operator/deployment/helm/dask-kubernetes-operator/crds"
)
EXECUTORS = [
    {"type": "Local"},
    {"type": "Dask", "dask": {"cluster": "Local"}},
    {"type": "Dask", "dask": {"cluster": "Kubernetes"}},
]


class Plane:
    def __init__(self, plane: ControlPlane, tmp: Path) -> None:
        self.plane = plane
        self.tmp = tmp
        self.base = [str(plane.bin_dir / "kubectl"), f"--kubeconfig={plane.kubeconfig}"]
        self.product = False
        self.swept: tuple[str, ...] = ("daskclusters",)

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run([*self.base, *args], input=stdin, text=True, capture_output=True,
                             check=True)  # fmt: skip
        return out.stdout

    def cleanup_requests(self) -> int:
        """API requests so far on what a finished run's cleanup looks for."""
        text = self.kubectl("get", "--raw", "/metrics")
        total = 0
        for line in text.splitlines():
            if line.startswith("apiserver_request_total{") and any(
                f'resource="{kind}"' in line for kind in self.swept
            ):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def operator(self, log: str) -> OperatorProcess:
        args = ["-n", NS] if self.product else ["--allow-in-process", "-n", NS]
        return OperatorProcess(self.plane.kubeconfig, self.tmp / log, args, metrics=False)


def finished_runs(plane: Plane, n: int) -> None:
    """N FlowRuns as an operator leaves them when it is killed after they ended."""
    items: list[dict[str, Any]] = []
    for i in range(n):
        executor = EXECUTORS[i % len(EXECUTORS)]
        items.append({
            "apiVersion": "flowrun.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": f"done-{i:04d}", "namespace": NS, "finalizers": [FINALIZER]},
            "spec": {"flow": {"tasks": [{"name": "a", "fn": "flowrun.examples.etl:hello"}]},
                     "executor": executor},
        })  # fmt: skip
    plane.kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": items}))  # fmt: skip
    for i, item in enumerate(items):
        name = item["metadata"]["name"]
        status: dict[str, Any] = {"phase": "Succeeded", "message": "Flow run succeeded."}
        if item["spec"]["executor"]["type"] == "Dask":
            status["cluster"] = {"name": f"fr-{name}-0a1b2c3d", "scheduler": "tcp://gone:8786"}
            # Deleted at the end of the run, as usual; every 10th run's cleanup was cut short
            # (its operator was killed): those may have left their cluster behind.
            status["cluster"]["deleted"] = i % 10 != 2
        plane.kubectl("patch", "flowrun", name, "-n", NS, "--subresource=status", "--type=merge",
                      "-p", json.dumps({"status": status}))  # fmt: skip


def restart(plane: Plane, label: str) -> tuple[float, int, float]:
    """Start an operator: seconds from its start to its last DaskCluster request (none: 0),
    how many it made, and apply -> Succeeded of a new run applied as soon as it is ready."""
    before = plane.cleanup_requests()
    proc = plane.operator(f"operator-{label}.log")
    started = time.monotonic()
    proc.start(timeout=120)
    name = f"fresh-{label}"
    if plane.product:  # no node here: a new run could not run
        return (*cleanup_until_quiet(plane, proc, started, before), float("nan"))
    applied = time.monotonic()
    fresh = {"apiVersion": "flowrun.dev/v1alpha1", "kind": "FlowRun",
             "metadata": {"name": name, "namespace": NS},
             "spec": {"flow": {"tasks": [{"name": "a", "fn": "flowrun.examples.etl:hello"}]},
                      "executor": {"type": "Local"}}}  # fmt: skip
    plane.kubectl("create", "-f", "-", stdin=json.dumps(fresh))
    wait_for(lambda: plane.kubectl("get", "flowrun", name, "-n", NS, "-o",
                                   "jsonpath={.status.phase}") == "Succeeded",
             timeout=600, interval=0.1)  # fmt: skip
    latency = time.monotonic() - applied
    return (*cleanup_until_quiet(plane, proc, started, before), latency)


def cleanup_until_quiet(
    plane: Plane, proc: OperatorProcess, started: float, before: int
) -> tuple[float, int]:
    """The sweep is over when no cleanup request came for QUIET seconds: its length from the
    operator's start (0 if none came) and the number of requests."""
    last, last_at = before, started
    waiting_since = time.monotonic()
    while time.monotonic() - max(last_at, waiting_since) < QUIET:
        now = plane.cleanup_requests()
        if now != last:
            last, last_at = now, time.monotonic()
        time.sleep(0.25)
    proc.stop()
    return (last_at - started if last != before else 0.0), last - before


def report(plane: Plane, n: int) -> None:
    plane.kubectl("create", "namespace", NS)
    empty = restart(plane, "empty")
    finished_runs(plane, n)
    full = restart(plane, "full")
    print(f"\nOperator restart over {n} finished FlowRuns (a third each: executor Local, "
          "Dask Local, Dask Kubernetes)\n")  # fmt: skip
    print("| measure | empty namespace | with finished runs | ratio |")
    print("|---|---:|---:|---:|")
    what = "cleanup" if plane.product else "DaskCluster"
    rows = [(f"start -> last {what} request (s)", 0), (f"{what} API requests", 1),
            ("new one-task FlowRun, apply -> Succeeded (s)", 2)]  # fmt: skip
    for title, k in rows:
        ratio = f"{full[k] / empty[k]:.1f}x" if empty[k] == empty[k] and empty[k] else "-"
        print(f"| {title} | {empty[k]:.1f} | {full[k]:.1f} | {ratio} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument(
        "--product-path",
        action="store_true",
        help="an operator without --allow-in-process (runner Pods): count its requests on "
        "Jobs, Roles, RoleBindings, ServiceAccounts and DaskClusters",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the operators' logs here")
    args = parser.parse_args()
    bins = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="flowrun-restart-") as tmp:
        cp = ControlPlane(Path(tmp) / "plane", bin_dir=bins)
        cp.start()
        plane = Plane(cp, Path(tmp))
        if args.product_path:
            plane.product = True
            plane.swept = ("daskclusters", "jobs", "roles", "rolebindings", "serviceaccounts")
        try:
            plane.kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
            wait_for(lambda: re.search("Established=True", plane.kubectl(
                "get", "crd", "flowruns.flowrun.dev", "-o",
                "jsonpath={range .status.conditions[*]}{.type}={.status} {end}")),
                timeout=60)  # fmt: skip
            for crd in sorted(DASK_CRDS.glob("*.yaml")):  # as with the Kubernetes provider
                plane.kubectl("apply", "--server-side", "-f", str(crd))
            report(plane, args.runs)
        finally:
            cp.stop()
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("operator-*.log"):
                    shutil.copy(log, args.keep_logs / log.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
