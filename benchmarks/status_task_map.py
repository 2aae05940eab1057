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

The second table is the committed design (`flowrun.runs.companion`): a big run's FlowRun carries
a lean task map (`StatusLimits.lean_tasks_bytes`; `--lean-kib` budgets measured) and
its companion ConfigMap the whole bounded map. Each row's write carrying its status (the finished
run's final write) and a later small write (phase, message), round robin with the 1-task inline
FlowRun's small write, the ratio's base; the earlier full map on the FlowRun for comparison.

    python benchmarks/status_task_map.py [--patches 8] [--table shapes|design|both] [--lean-kib 4,8]
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import copy
import json
import runpy
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flowrun.api import crd
from flowrun.api.status import StatusBuilder, StatusLimits
from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.waiting import wait_for
from flowrun.engine.events import TaskEvent
from flowrun.runs import companion, render

# The sibling script's pieces, run by file (this directory is off sys.path: benchmarks/operator.py
# would shadow the standard library's `operator`).
sw = SimpleNamespace(**runpy.run_path(str(Path(__file__).with_name("status_writes.py"))))

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


def finished(n_tasks: int, lean_bytes: int) -> StatusBuilder:
    """The status builder of a finished n-task run (as `sw.bounded_task_map`'s)."""
    limits = StatusLimits(lean_tasks_bytes=lean_bytes)
    builder = StatusBuilder([f"t{i}" for i in range(n_tasks)], limits=limits)
    for i in range(n_tasks):
        builder.apply(TaskEvent(f"t{i}", None, "Success", None, 1, 1.8e9 + i, True))
    return builder


def design_rows(lean_kib: list[int]) -> dict[str, dict[str, Any]]:
    """label -> the status a finished 10,000-task template run's FlowRun carries."""
    rows = {}
    for kib in lean_kib:
        task_part = render.task_fragment(finished(N, kib * 1024), lean=True)
        committed = " (committed)" if kib * 1024 == StatusLimits().lean_tasks_bytes else ""
        rows[f"FlowRun, lean map {kib} KiB{committed}"] = {
            **task_part,
            "statusConfigMap": f"fr-fr-{N}-0a1b2c3d-status",
        }
    rows["FlowRun, whole bounded map (earlier)"] = sw.bounded_task_map(N)
    return rows


def companion_data() -> dict[str, str]:
    """The companion of a finished 10,000-task run: live keys and the whole bounded map."""
    builder = finished(N, StatusLimits().lean_tasks_bytes)
    fragment = render.task_fragment(builder)
    merged = {"phase": "Succeeded", **fragment}
    live = companion.live_data(dict.fromkeys(companion.LIVE), merged)
    present = {k: v for k, v in live.items() if v is not None}  # no message: no key
    return {**present, **companion.task_map_data(render.task_map(builder))}


def design(plane: Any, patches: int, lean_kib: list[int]) -> None:
    """The committed design's table (see the module docstring)."""
    rows = design_rows(lean_kib)
    base = sw.Variant("1-task inline FlowRun", sw.in_group(crd.build(), 10))
    plane.install(base)
    plane.kubectl("create", "-f", "-", stdin=json.dumps(sw.flowrun(base, 1)))
    variants = []
    for i, label in enumerate(rows):
        v = sw.Variant(label, sw.in_group(crd.build(), 11 + i), template=True)
        plane.install(v)
        plane.kubectl("create", "-f", "-", stdin=json.dumps(sw.flowtemplate(v, N)))
        plane.kubectl("create", "-f", "-", stdin=json.dumps(sw.flowrun(v, N)))
        variants.append(v)
    data = companion_data()
    meta = {"name": "fr-companion", "namespace": sw.NS}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
    plane.kubectl("create", "-f", "-", stdin=json.dumps(cm))
    ms: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    for carrying in (True, False):
        none = (0.0, 0)
        before, cm0 = plane.patch_seconds(), plane.patch_seconds("configmaps", "").get("", none)
        for i in range(patches):
            small = {"phase": "Succeeded", "message": f"patch {i}"}
            for v in variants:
                body = {**rows[v.label], **small} if carrying else small
                plane.merge_patch(f"flowruns.{v.group}/fr-{N}", "--subresource=status",
                                  body={"status": body})  # fmt: skip
            # The companion's write: its whole map (a changed value, as a run's end makes it).
            changed = {**data, "message": small["message"]} if carrying else {"phase": f"x{i}"}
            if carrying:
                changed["tasks"] = data["tasks"].replace("Success", f"Succes{i % 10}", 1)
            plane.merge_patch("configmap/fr-companion", body={"data": changed})
            plane.merge_patch(f"flowruns.{base.group}/fr-1", "--subresource=status",
                              body={"status": small})  # fmt: skip
        after, cm1 = plane.patch_seconds(), plane.patch_seconds("configmaps", "")[""]
        for v in [*variants, base]:
            ms.setdefault(v.label, []).append(
                1000 * (after[v.group][0] - before.get(v.group, (0.0, 0))[0]) / patches
            )
        ms.setdefault("companion ConfigMap, whole map", []).append(
            1000 * (cm1[0] - cm0[0]) / (cm1[1] - cm0[1])
        )
    for v in variants:
        got = ("get", f"flowruns.{v.group}", f"fr-{N}", "-n", sw.NS, "-o", "json")
        sizes[v.label] = len(json.dumps(json.loads(plane.kubectl(*got))))
    sizes["companion ConfigMap, whole map"] = len(json.dumps(cm))
    base_full, base_small = ms[base.label]  # the 1-task FlowRun's small write, in each round
    print(f"\nwrites of a finished {N:,}-task template run (the committed design) vs the 1-task")
    print(f"inline FlowRun's status PATCH (phase, message): {base_full:.1f} ms in the first round,")
    print(f"{base_small:.1f} ms in the second; {patches} writes each, round robin\n")
    print("| object | size | write carrying its status | vs base | later small write | vs base |")
    print("|---|---:|---:|---:|---:|---:|")
    for label in [*rows, "companion ConfigMap, whole map"]:
        full, small_ms = ms[label]
        print(f"| {label} | {sizes[label]:,} B | {full:.1f} ms | {full / base_full:.1f}x "
              f"| {small_ms:.1f} ms | {small_ms / base_small:.1f}x |")  # fmt: skip


def with_plane(work: Callable[[Any], None]) -> int:
    """`work(plane)` on a fresh control plane with the benchmark's namespace."""
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        control = ControlPlane(
            Path(tmp) / "plane", bin_dir=build.ensure_built(), tie_to_parent=True
        )
        control.start()
        try:
            plane = sw.Plane(control)
            wait_for(lambda: plane.kubectl("get", "--raw", "/readyz"), timeout=60)
            plane.kubectl("create", "namespace", sw.NS)
            work(plane)
        finally:
            control.stop()
    return 0


def shapes_table(plane: Any, patches: int) -> None:
    """The first table: `status.tasks` declared four ways (see the module docstring)."""
    chosen = [
        sw.Variant(label, sw.in_group(d, i), template=True)
        for i, (label, d) in enumerate(shapes().items())
    ]
    base = sw.Variant("1-task inline FlowRun", sw.in_group(crd.build(), len(chosen)))
    fragment = {"phase": "Running", **sw.bounded_task_map(N)}
    sizes, ms = {}, {}
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
    for i in range(patches):
        for group, name in pairs:
            body = json.dumps({"status": {"phase": "Running", "message": f"patch {i}"}})
            what = (f"flowruns.{group}", name, "-n", sw.NS, "--subresource=status")
            plane.kubectl("patch", *what, "--type=merge", "-p", body)
    after = plane.patch_seconds()
    for group, _ in pairs:
        s0 = before.get(group, (0.0, 0))[0]
        ms[group] = 1000 * (after[group][0] - s0) / patches
    small = ms[base.group]
    print(f"\nstatus PATCH of a finished {N:,}-task run's FlowRun (its flow in a FlowTemplate), by")
    print(f"how the CRD declares status.tasks; base: {base.label}, {small:.1f} ms\n")
    print("| status.tasks | object | managedFields | PATCH | vs base |\n|---|---:|---:|---:|---:|")
    for v in chosen:
        obj, managed = sizes[v.label]
        cost = ms[v.group]
        print(f"| {v.label} | {obj:,} B | {managed:,} B | {cost:.1f} ms | {cost / small:.1f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=8, help="status patches per FlowRun")
    parser.add_argument("--table", choices=("shapes", "design", "both"), default="both")
    parser.add_argument("--lean-kib", default="4,8,12,16", help="lean map budgets to measure")
    args = parser.parse_args()

    def work(plane: Any) -> None:
        if args.table in ("shapes", "both"):
            shapes_table(plane, args.patches)
        if args.table in ("design", "both"):
            design(plane, args.patches, [int(k) for k in args.lean_kib.split(",")])

    return with_plane(work)


if __name__ == "__main__":
    sys.exit(main())
