# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""Status PATCH latency of a FlowRun as a function of its inline flow's size, on a real API server.

Every status write of a FlowRun makes the API server process the whole object again: decode,
patch, field management, validation (including the CRD's CEL rules on `spec`), encode, store.
This measures, with the API server's own `apiserver_request_duration_seconds` (verb PATCH,
subresource status), the mean latency of status patches on FlowRuns of 1, 1,000 and 10,000
inline tasks, and prints each size's ratio to the 1-task FlowRun of the same CRD. No operator
runs: each patch is what the operator's status writer sends (a merge patch of a few fields).

    python benchmarks/status_writes.py                 # the committed CRD
    python benchmarks/status_writes.py --diagnose      # also: where the cost comes from

`--diagnose` adds variants that locate the cost: the CRD with no CEL rule at all, with exactly
one of its rules kept (each in turn), with `flow.tasks` a list keyed by name (as it was before
it became atomic), and the committed CRD holding the tasks' bytes as one string instead.
Each variant is installed under its own API group at the same time, and the patches go round
robin over all of them, so that the machine's load (shared, 2 cores) falls on every row alike.
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import copy
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowrun.api import crd
from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.waiting import wait_for

FN = "flowrun.examples.etl:hello"
SIZES = (1, 1000, 10_000)
NS = "bench"
_METRIC = re.compile(r"^apiserver_request_duration_seconds_(sum|count)\{(.*)\} (\S+)$")


@dataclass(frozen=True)
class Variant:
    label: str
    definition: dict[str, Any]
    as_string: bool = False  # the tasks' bytes as one string value instead of tasks

    @property
    def group(self) -> str:
        group: str = self.definition["spec"]["group"]
        return group


class Plane:
    def __init__(self, plane: ControlPlane) -> None:
        self.base = [str(plane.bin_dir / "kubectl"), f"--kubeconfig={plane.kubeconfig}"]

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [*self.base, *args], input=stdin, text=True, capture_output=True, check=True
        ).stdout

    def install(self, definition: dict[str, Any]) -> None:
        self.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(definition))
        name = definition["metadata"]["name"]
        self.kubectl("wait", "--for=condition=Established", f"crd/{name}")

    def patch_seconds(self) -> dict[str, tuple[float, int]]:
        """group -> (sum, count) of the API server's status PATCH durations on flowruns."""
        got: dict[str, list[float]] = {}
        for line in self.kubectl("get", "--raw", "/metrics").splitlines():
            m = _METRIC.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            wanted = {"resource": "flowruns", "subresource": "status", "verb": "PATCH"}
            if all(labels.get(k) == v for k, v in wanted.items()):
                sums = got.setdefault(labels.get("group", ""), [0.0, 0.0])
                sums[m.group(1) == "count"] += float(m.group(3))
        return {group: (s, int(c)) for group, (s, c) in got.items()}


def tasks(n_tasks: int) -> list[dict[str, Any]]:
    return [{"name": f"t{i}", "fn": FN, "args": [str(i), {"k": [i, None]}]} for i in range(n_tasks)]


def flowrun(variant: Variant, n_tasks: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"flow": {"tasks": tasks(n_tasks)}}
    if variant.as_string:
        spec = {"flow": {"tasks": tasks(1)}, "parameters": {"blob": json.dumps(tasks(n_tasks))}}
    return {
        "apiVersion": f"{variant.group}/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": f"fr-{n_tasks}", "namespace": NS},
        "spec": {**spec, "executor": {"dask": {"cluster": "Local"}}},
    }


def rules(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (schema path, CEL rule) of a schema."""
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations", []):
            yield path or ".", rule
        for key, child in node.items():
            if key != "x-kubernetes-validations":
                yield from rules(child, f"{path}.{key}" if key != "properties" else path)
    elif isinstance(node, list):
        for child in node:
            yield from rules(child, path)


def keep_only(definition: dict[str, Any], kept: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of the CRD with every CEL rule removed except `kept`."""
    out = copy.deepcopy(definition)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            mine = [r for r in node.pop("x-kubernetes-validations", []) if r == kept]
            if mine:
                node["x-kubernetes-validations"] = mine
            for child in node.values():
                strip(child)
        elif isinstance(node, list):
            for child in node:
                strip(child)

    strip(out)
    return out


def keyed_tasks(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of the CRD whose `flow.tasks` is a list keyed by name (as before it was atomic)."""
    out = copy.deepcopy(definition)
    spec = out["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    listed = spec["properties"]["flow"]["properties"]["tasks"]
    listed.update({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    return out


def in_group(definition: dict[str, Any], index: int) -> dict[str, Any]:
    """The same CRD under an API group of its own, so that variants can coexist."""
    out = copy.deepcopy(definition)
    group = f"v{index}.bench.{out['spec']['group']}"
    out["spec"]["group"] = group
    out["metadata"]["name"] = f"{out['spec']['names']['plural']}.{group}"
    return out


def variants(diagnose: bool) -> list[Variant]:
    committed = crd.build()
    if not diagnose:
        return [Variant("committed CRD", committed)]
    bare = keep_only(committed, None)
    found = [
        ("committed CRD", committed, False),
        ("no CEL rule", bare, False),
        ("committed CRD, flow.tasks keyed by name (before)", keyed_tasks(committed), False),
        ("no CEL rule, flow.tasks keyed by name", keyed_tasks(bare), False),
        ("committed CRD, the tasks' bytes as one string", committed, True),
    ]
    for path, rule in rules(committed["spec"]["versions"][0]["schema"]):
        where = path.removeprefix(".openAPIV3Schema")
        found.append((f"only `{rule['rule'][:40]}` at {where}", keep_only(committed, rule), False))
    return [Variant(label, in_group(d, i), s) for i, (label, d, s) in enumerate(found)]


def measure(plane: Plane, chosen: list[Variant], patches: int) -> dict[tuple[str, int], float]:
    """Mean ms per (variant label, size), the patches interleaved over every FlowRun."""
    for variant in chosen:
        plane.install(variant.definition)
        for size in SIZES:
            plane.kubectl("create", "-f", "-", stdin=json.dumps(flowrun(variant, size)))
    before = plane.patch_seconds()
    by_group: dict[tuple[str, int], float] = {}
    for size in SIZES:
        for i in range(patches):
            for variant in chosen:
                body = json.dumps({"status": {"phase": "Running", "message": f"patch {i}"}})
                what = (f"flowruns.{variant.group}", f"fr-{size}", "-n", NS)
                plane.kubectl("patch", *what, "--subresource=status", "--type=merge", "-p", body)
        after = plane.patch_seconds()
        for variant in chosen:
            (s0, c0), (s1, c1) = before.get(variant.group, (0.0, 0)), after[variant.group]
            assert c1 - c0 == patches, (variant.label, size, c0, c1)
            by_group[(variant.label, size)] = 1000 * (s1 - s0) / patches
        before = after
    return by_group


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--diagnose", action="store_true", help="also the variants locating it")
    parser.add_argument("--patches", type=int, default=10, help="status patches per FlowRun")
    args = parser.parse_args()
    chosen = variants(args.diagnose)
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        bins = build.ensure_built()
        control = ControlPlane(Path(tmp) / "plane", bin_dir=bins, tie_to_parent=True)
        control.start()
        try:
            plane = Plane(control)
            wait_for(lambda: plane.kubectl("get", "--raw", "/readyz"), timeout=60)
            plane.kubectl("create", "namespace", NS)
            figures = measure(plane, chosen, args.patches)
        finally:
            control.stop()
    sizes = " | ".join(f"{n:,} tasks" for n in SIZES)
    print("\nstatus PATCH, API server mean latency (ratio to the 1-task FlowRun of the same CRD)\n")
    print(f"| CRD | {sizes} |\n|---|{'---:|' * len(SIZES)}")
    for variant in chosen:
        row = [figures[(variant.label, n)] for n in SIZES]
        print(
            f"| {variant.label} | "
            + " | ".join(f"{v:.1f} ms ({v / row[0]:.0f}x)" for v in row)
            + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
