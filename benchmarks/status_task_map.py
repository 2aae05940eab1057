# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""Status PATCH of a finished 10,000-task run, by how the CRD declares `status.tasks`.

A FlowRun of a 10,000-task FlowTemplate (so its spec is small) carries what the status builder
writes for a finished 10,000-task run: the bounded task map (about 200 KB, 2,671 entries). Its
status PATCH (the API server's own `apiserver_request_duration_seconds`) is measured with
`status.tasks` declared four ways, each CRD under its own API group, the patches round robin over
all of them and a 1-task inline FlowRun (the committed CRD), whose latency is the ratio's base:

- typed: every entry's fields in the schema, a granular map (the CRD until this script);
- typed, atomic: the same, `x-kubernetes-map-type: atomic`;
- untyped: entries free-form, a granular map;
- committed: untyped and atomic (`flowrun.api.crd.lean_task_map`).

It also prints each one's object and `managedFields` sizes.

    python benchmarks/status_task_map.py [--patches 8]
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import copy
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

from flowrun.api import crd
from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.waiting import wait_for

# The sibling script's pieces (this directory is off sys.path: benchmarks/operator.py would
# shadow the standard library's `operator`).
_spec = importlib.util.spec_from_file_location(
    "status_writes", Path(__file__).with_name("status_writes.py")
)
assert _spec is not None
assert _spec.loader is not None
sw = sys.modules["status_writes"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sw)

N = 10_000


def _tasks_node(definition: dict[str, Any]) -> dict[str, Any]:
    status = definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    node: dict[str, Any] = status["properties"]["tasks"]
    return node


def shapes() -> dict[str, dict[str, Any]]:
    typed = crd.build(documented=True)
    atomic = copy.deepcopy(typed)
    _tasks_node(atomic)["x-kubernetes-map-type"] = "atomic"
    untyped = crd.build()
    _tasks_node(untyped).pop("x-kubernetes-map-type")
    return {
        "typed (before)": typed,
        "typed, atomic": atomic,
        "untyped": untyped,
        "committed: untyped, atomic": crd.build(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=8, help="status patches per FlowRun")
    args = parser.parse_args()
    chosen = [
        sw.Variant(label, sw.in_group(d, i), template=True)
        for i, (label, d) in enumerate(shapes().items())
    ]
    base = sw.Variant("1-task inline FlowRun", sw.in_group(crd.build(), len(chosen)))
    fragment = {"phase": "Running", **sw.bounded_task_map(N)}
    sizes, ms = {}, {}
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        control = ControlPlane(
            Path(tmp) / "plane", bin_dir=build.ensure_built(), tie_to_parent=True
        )
        control.start()
        try:
            plane = sw.Plane(control)
            wait_for(lambda: plane.kubectl("get", "--raw", "/readyz"), timeout=60)
            plane.kubectl("create", "namespace", sw.NS)
            plane.install(base)
            plane.kubectl("create", "-f", "-", stdin=json.dumps(sw.flowrun(base, 1)))
            for v in chosen:
                plane.install(v)
                plane.kubectl("create", "-f", "-", stdin=json.dumps(sw.flowtemplate(v, N)))
                plane.kubectl("create", "-f", "-", stdin=json.dumps(sw.flowrun(v, N)))
                what = (f"flowruns.{v.group}/fr-{N}", "--subresource=status")
                plane.merge_patch(*what, body={"status": fragment})
                got = ("get", f"flowruns.{v.group}", f"fr-{N}", "-n", sw.NS, "-o", "json")
                obj = json.loads(plane.kubectl(*got, "--show-managed-fields"))
                managed = obj["metadata"].get("managedFields")
                sizes[v.label] = (len(json.dumps(obj)), len(json.dumps(managed)))
            pairs = [(v.group, f"fr-{N}") for v in chosen] + [(base.group, "fr-1")]
            before = plane.patch_seconds()
            for i in range(args.patches):
                for group, name in pairs:
                    body = json.dumps({"status": {"phase": "Running", "message": f"patch {i}"}})
                    what = (f"flowruns.{group}", name, "-n", sw.NS, "--subresource=status")
                    plane.kubectl("patch", *what, "--type=merge", "-p", body)
            after = plane.patch_seconds()
            for group, _ in pairs:
                s0 = before.get(group, (0.0, 0))[0]
                ms[group] = 1000 * (after[group][0] - s0) / args.patches
        finally:
            control.stop()
    small = ms[base.group]
    print(f"\nstatus PATCH of a finished {N:,}-task run's FlowRun (its flow in a FlowTemplate), by")
    print(f"how the CRD declares status.tasks; base: {base.label}, {small:.1f} ms\n")
    print("| status.tasks | object | managedFields | PATCH | vs base |\n|---|---:|---:|---:|---:|")
    for v in chosen:
        obj, managed = sizes[v.label]
        cost = ms[v.group]
        print(f"| {v.label} | {obj:,} B | {managed:,} B | {cost:.1f} ms | {cost / small:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
