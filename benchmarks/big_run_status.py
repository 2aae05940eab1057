# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""The status writes of one big inline FlowRun through the operator, without and with its
live-status ConfigMap (`flowrun.runs.companion`), on a real API server.

A FlowRun of N inline tasks (executor Local, in the operator, `--allow-in-process`) runs twice.
Before: its live-status ConfigMap is made unwritable (created `immutable: true` before the
operator starts), so the status writer gives the companion up and writes everything to the
FlowRun, as it did before the companion existed. After: as shipped. The figures are the API
server's own (`apiserver_request_duration_seconds`, PATCH): how many FlowRun status writes, their
total and mean time, and the same for the ConfigMap, with the after/before ratio of the API
server time all status writes of the run cost.

    python benchmarks/big_run_status.py --tasks 10000               # about 30 s a run
    python benchmarks/big_run_status.py --tasks 10000 --sleep 0.015 # longer runs (tasks sleep)
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from flowrun.cluster import base
from flowrun.controller import runner_objects as objects
from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
NS = "bench"
FN = "flowrun.examples.etl:hello"
_METRIC = re.compile(r"^apiserver_request_duration_seconds_(sum|count)\{(.*)\} (\S+)$")
Writes = dict[str, tuple[float, int]]  # resource -> (seconds, count) of PATCH


class Plane:
    def __init__(self, plane: ControlPlane, tmp: Path) -> None:
        self.plane = plane
        self.tmp = tmp
        self.base = [str(plane.bin_dir / "kubectl"), f"--kubeconfig={plane.kubeconfig}"]

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [*self.base, *args], input=stdin, text=True, capture_output=True, check=True
        ).stdout

    def writes(self) -> Writes:
        got: dict[str, list[float]] = {"flowruns/status": [0.0, 0.0], "configmaps": [0.0, 0.0]}
        for line in self.kubectl("get", "--raw", "/metrics").splitlines():
            m = _METRIC.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            what = "/".join(filter(None, (labels.get("resource"), labels.get("subresource"))))
            if labels.get("verb") == "PATCH" and what in got:
                got[what][m.group(1) == "count"] += float(m.group(3))
        return {k: (s, int(c)) for k, (s, c) in got.items()}

    def phase(self, name: str) -> str:
        path = "jsonpath={.status.phase}"
        return self.kubectl("get", "flowrun", name, "-n", NS, "-o", path).strip()


def flowrun(name: str, n_tasks: int, sleep: float) -> dict[str, Any]:
    call = {"fn": "time:sleep", "args": [sleep]} if sleep else {"fn": FN, "args": ["x"]}
    tasks = [{"name": f"t{i}", **call} for i in range(n_tasks)]
    return {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"flow": {"tasks": tasks}, "executor": {"type": "Local"}},
    }


def one_run(
    plane: Plane, name: str, n_tasks: int, sleep: float, *, companion: bool
) -> tuple[Writes, float]:
    plane.kubectl("create", "-f", "-", stdin=json.dumps(flowrun(name, n_tasks, sleep)))
    if not companion:
        uid = plane.kubectl("get", "flowrun", name, "-n", NS, "-o", "jsonpath={.metadata.uid}")
        owner = base.Owner("flowrun.dev/v1alpha1", "FlowRun", name, NS, uid)
        blocked = {**objects.live_status(owner, {"blocked": "yes"}), "immutable": True}
        plane.kubectl("create", "-f", "-", stdin=json.dumps(blocked))
    before, started = plane.writes(), time.monotonic()
    log = plane.tmp / f"operator-{name}.log"
    args = ["--allow-in-process", "-n", NS]
    operator = OperatorProcess(plane.plane.kubeconfig, log, args, metrics=False).start()
    try:
        wait_for(lambda: plane.phase(name) in {"Succeeded", "Failed"}, timeout=1800, what=name)
    finally:
        operator.stop()
    elapsed = time.monotonic() - started
    after = plane.writes()
    assert plane.phase(name) == "Succeeded", log.read_text()[-3000:]
    deltas = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in after}
    return deltas, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="inline tasks of the FlowRun")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each task sleeps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        control = ControlPlane(
            Path(tmp) / "plane", bin_dir=build.ensure_built(), tie_to_parent=True
        )
        control.start()
        try:
            plane = Plane(control, Path(tmp))
            wait_for(lambda: plane.kubectl("get", "--raw", "/readyz"), timeout=60)
            plane.kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
            plane.kubectl("wait", "--for=condition=Established", "crd/flowruns.flowrun.dev")
            plane.kubectl("create", "namespace", NS)
            rows = {
                "before: everything to the FlowRun": one_run(
                    plane, "before", args.tasks, args.sleep, companion=False
                ),
                "after: live status to the ConfigMap": one_run(
                    plane, "after", args.tasks, args.sleep, companion=True
                ),
            }
        finally:
            control.stop()
    print(
        f"\nstatus writes of one {args.tasks:,}-task inline FlowRun (API server's PATCH figures)\n"
    )
    print("| run | wall s | FlowRun writes | their total s | mean ms | ConfigMap writes | mean ms "
          "| all writes s | vs before |\n|---|" + "---:|" * 8)  # fmt: skip
    first = sum(s for s, _ in next(iter(rows.values()))[0].values())
    for label, (writes, elapsed) in rows.items():
        (fs, fc), (cs, cc) = writes["flowruns/status"], writes["configmaps"]
        total = fs + cs
        cells = [f"{elapsed:.0f}", str(fc), f"{fs:.1f}", f"{1000 * fs / max(fc, 1):.0f}", str(cc)]
        cells += [f"{1000 * cs / max(cc, 1):.1f}", f"{total:.1f}", f"{total / first:.2f}x"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
