# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""Status PATCH latency of a FlowRun as a function of its inline flow's size, on a real API server.

Every status write of a FlowRun makes the API server process the whole object again: decode,
patch, field management, validation (including the CRD's CEL rules on `spec`), encode, store.
This measures, with the API server's own `apiserver_request_duration_seconds` (verb PATCH,
subresource status), the mean latency of status patches on FlowRuns of 1, 1,000 and 10,000
inline tasks, and prints each size's ratio to the 1-task FlowRun of the same CRD, and the
after/before ratio. No operator runs: each patch is what the operator's status writer sends (a
merge patch of a few fields).

    python benchmarks/status_writes.py                     # before / after
    python benchmarks/status_writes.py --diagnose          # also: where the cost comes from
    python benchmarks/status_writes.py --profile DIR       # also: CPU profiles of the apiserver

Before: spec immutability as CEL rules in the CRD's schema (`self == oldSelf` on every spec field
but `cancel`, as until this commit). After: the committed CRD (no such rule) with the
ValidatingAdmissionPolicy `flowrun crd` ships beside it. `--diagnose` adds variants that locate
the cost: no CEL rule at all, exactly one of the before-CRD's rules kept (each in turn),
`flow.tasks` a list keyed by name (as it was before it became atomic), and the tasks' bytes as
one string. `--profile DIR` then runs each variant's 10,000-task patches again, alone, under a
CPU profile of kube-apiserver (`DIR/<n>.pprof`; read with `go tool pprof -top -cum`).
Each variant is installed under its own API group at the same time, and the patches go round
robin over all of them, so that the machine's load (shared, 2 cores) falls on every row alike.

Issue 13: a row whose FlowRuns name a FlowTemplate of the row's size (`spec.flow.templateRef`),
then the 10,000-task template's FlowRun against the 1-task inline one, interleaved and alone: as
the run starts, and carrying a finished 10,000-task run's bounded task status.
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import json
import math
import re
import runpy
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from flowrun.api import crd
from flowrun.api.status import StatusBuilder
from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.waiting import wait_for
from flowrun.engine.events import TaskEvent
from flowrun.runs.render import task_fragment

# The sibling module's pieces, run by file: benchmarks/operator.py would shadow the standard
# library's `operator` if this directory were on sys.path. status_task_map.py uses them as ours.
_crds = runpy.run_path(str(Path(__file__).with_name("crd_variants.py")))
Variant, in_group, policy_for, variants = (
    _crds[name] for name in ("Variant", "in_group", "policy_for", "variants")
)

FN = "flowrun.examples.etl:hello"
SIZES = (1, 1000, 10_000)
NS = "bench"
_METRIC = re.compile(r"^apiserver_request_duration_seconds_(sum|count)\{(.*)\} (\S+)$")


class Plane:
    def __init__(self, plane: ControlPlane) -> None:
        self.base = [str(plane.bin_dir / "kubectl"), f"--kubeconfig={plane.kubeconfig}"]

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [*self.base, *args], input=stdin, text=True, capture_output=True, check=True
        ).stdout

    def install(self, variant: Variant) -> None:
        definition = variant.definition
        self.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(definition))
        name = definition["metadata"]["name"]
        # `kubectl wait` fails at once while a new CRD has no conditions yet: ask again.
        wait_for(lambda: self.established(name), timeout=120, what=f"crd/{name} established")
        if variant.template:
            templates_crd = {**crd.build_template(), "spec": {**crd.build_template()["spec"]}}
            templates_crd["spec"]["group"] = variant.group
            templates_crd["metadata"] = {"name": f"flowtemplates.{variant.group}"}
            self.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(templates_crd))
            wait_for(lambda: self.established(f"flowtemplates.{variant.group}"), timeout=120)
        if variant.policy:
            policy, binding = policy_for(variant.group)
            for doc in (policy, binding):
                self.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(doc))

    def merge_patch(self, *what: str, body: dict[str, Any]) -> None:
        """A merge patch too big for a command line (a file, as `--patch-file`)."""
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            file.write(json.dumps(body))
            file.flush()
            self.kubectl("patch", *what, "-n", NS, "--type=merge", f"--patch-file={file.name}")

    def established(self, crd_name: str) -> bool:
        wait = ("wait", "--for=condition=Established", f"crd/{crd_name}", "--timeout=30s")
        try:
            self.kubectl(*wait)
        except subprocess.CalledProcessError:
            return False
        return True

    def patch_seconds(
        self, resource: str = "flowruns", subresource: str = "status"
    ) -> dict[str, tuple[float, int]]:
        """group -> (sum, count) of the API server's PATCH durations on `resource`."""
        got: dict[str, list[float]] = {}
        for line in self.kubectl("get", "--raw", "/metrics").splitlines():
            m = _METRIC.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            wanted = {"resource": resource, "subresource": subresource, "verb": "PATCH"}
            if all(labels.get(k, "") == v for k, v in wanted.items()):
                sums = got.setdefault(labels.get("group", ""), [0.0, 0.0])
                sums[m.group(1) == "count"] += float(m.group(3))
        return {group: (s, int(c)) for group, (s, c) in got.items()}


def tasks(n_tasks: int) -> list[dict[str, Any]]:
    return [{"name": f"t{i}", "fn": FN, "args": [str(i), {"k": [i, None]}]} for i in range(n_tasks)]


def flowtemplate(variant: Variant, n_tasks: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{variant.group}/v1alpha1",
        "kind": "FlowTemplate",
        "metadata": {"name": f"tpl-{n_tasks}", "namespace": NS},
        "spec": {"flow": {"tasks": tasks(n_tasks)}},
    }


def flowrun(variant: Variant, n_tasks: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"flow": {"tasks": tasks(n_tasks)}}
    if variant.template:
        spec = {"flow": {"templateRef": {"name": f"tpl-{n_tasks}"}}}
    if variant.as_string:
        spec = {"flow": {"tasks": tasks(1)}, "parameters": {"blob": json.dumps(tasks(n_tasks))}}
    return {
        "apiVersion": f"{variant.group}/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": f"fr-{n_tasks}", "namespace": NS},
        "spec": {**spec, "executor": {"dask": {"cluster": "Local"}}},
    }


Figures = dict[tuple[str, int], float]


def create(plane: Plane, chosen: list[Variant]) -> dict[tuple[str, int], str]:
    """Every variant's FlowRuns; what the API server refused instead: (label, size) -> why."""
    refused = {}
    for variant in chosen:
        plane.install(variant)
        verb = ("apply",) if variant.client_apply else ("create",)
        for size in SIZES:
            if variant.template:  # the big flow, once; the FlowRun names it
                plane.kubectl("create", "-f", "-", stdin=json.dumps(flowtemplate(variant, size)))
            try:
                plane.kubectl(*verb, "-f", "-", stdin=json.dumps(flowrun(variant, size)))
            except subprocess.CalledProcessError as exc:
                if not variant.client_apply:
                    raise
                refused[(variant.label, size)] = exc.stderr.strip().splitlines()[1].strip("* ")
    return refused


def measure(plane: Plane, chosen: list[Variant], patches: int, refused: Any) -> Figures:
    """Mean ms per (variant label, size), the patches interleaved over every FlowRun."""
    before = plane.patch_seconds()
    by_group: Figures = {}
    for size in SIZES:
        present = [v for v in chosen if (v.label, size) not in refused]
        for i in range(patches):
            for variant in present:
                body = json.dumps({"status": {"phase": "Running", "message": f"patch {i}"}})
                what = (f"flowruns.{variant.group}", f"fr-{size}", "-n", NS)
                plane.kubectl("patch", *what, "--subresource=status", "--type=merge", "-p", body)
        after = plane.patch_seconds()
        for variant in present:
            (s0, c0), (s1, c1) = before.get(variant.group, (0.0, 0)), after[variant.group]
            assert c1 - c0 == patches, (variant.label, size, c0, c1)
            by_group[(variant.label, size)] = 1000 * (s1 - s0) / patches
        before = after
    return by_group


def bounded_task_map(n_tasks: int) -> dict[str, Any]:
    """The task part of the status of a finished n-task run, as the status builder bounds it."""
    builder = StatusBuilder([f"t{i}" for i in range(n_tasks)])
    for i in range(n_tasks):
        builder.apply(TaskEvent(f"t{i}", None, "Success", None, 1, 1.8e9 + i, True))
    return task_fragment(builder)


def companions(plane: Plane, after: Variant, patches: int) -> dict[str, tuple[float, float]]:
    """Companion ConfigMaps: label -> (its PATCH ms, the 1-task FlowRun's status PATCH ms,
    interleaved with it).

    The live fields (phase, progress, counts; what `flowrun.runs.companion` writes for a big
    inline flow), and, for comparison, the bounded per-task map of a 10,000-task run as one JSON
    string (a companion that is not built: it costs too much).
    """
    fragment = bounded_task_map(SIZES[-1])
    live = {k: json.dumps(fragment[k]) for k in ("progress", "failed", "taskCounts")}
    shapes = {
        "live fields (phase, progress, counts): built": {"phase": "Running", **live},
        "the bounded task map of a 10,000-task run: not built": {"tasks": json.dumps(fragment)},
    }
    out = {}
    for index, (label, values) in enumerate(shapes.items()):
        name = f"companion-{index}"
        body = {"apiVersion": "v1", "kind": "ConfigMap", "data": values}
        body["metadata"] = {"name": name, "namespace": NS}
        plane.kubectl("create", "-f", "-", stdin=json.dumps(body))
        none = (0.0, 0)  # no PATCH of a ConfigMap yet: no such series
        cm0 = plane.patch_seconds("configmaps", "").get("", none)
        fr0 = plane.patch_seconds()[after.group]
        for i in range(patches):
            status = json.dumps({"status": {"phase": "Running", "message": f"companion {i}"}})
            what = (f"flowruns.{after.group}", "fr-1", "-n", NS, "--subresource=status")
            plane.kubectl("patch", *what, "--type=merge", "-p", status)
            changed = {key: value.replace("1", str(i % 10), 1) for key, value in values.items()}
            plane.merge_patch(f"configmap/{name}", body={"data": changed})
        cm1, fr1 = plane.patch_seconds("configmaps", "")[""], plane.patch_seconds()[after.group]
        mean = [1000 * (s1 - s0) / (c1 - c0) for (s0, c0), (s1, c1) in ((cm0, cm1), (fr0, fr1))]
        out[label] = (mean[0], mean[1])
    return out


def templated(plane: Plane, chosen: list[Variant], patches: int) -> dict[str, tuple[float, float]]:
    """Issue 13: status PATCH of the FlowRun of a 10,000-task FlowTemplate vs the 1-task inline
    FlowRun (after), interleaved, the two alone: label -> (its ms, the 1-task FlowRun's ms).
    First as it starts, then carrying a finished 10,000-task run's bounded status."""
    [mine] = [v for v in chosen if v.template]
    after, size = chosen[1], SIZES[-1]
    pair = ((mine.group, f"fr-{size}"), (after.group, "fr-1"))
    out = {}
    for label in ("as it starts (phase, message)", "with a finished run's bounded task status"):
        if out:  # what the status writer has written by the run's end
            fragment = {"phase": "Running", **bounded_task_map(size)}
            what = (f"flowruns.{mine.group}/fr-{size}", "--subresource=status")
            plane.merge_patch(*what, body={"status": fragment})
        before = plane.patch_seconds()
        for i in range(patches):
            for group, name in pair:
                body = json.dumps({"status": {"phase": "Running", "message": f"templated {i}"}})
                what = (f"flowruns.{group}", name, "-n", NS, "--subresource=status")
                plane.kubectl("patch", *what, "--type=merge", "-p", body)
        after_ = plane.patch_seconds()
        ms = [1000 * (after_[g][0] - before[g][0]) / patches for g, _ in pair]
        out[label] = (ms[0], ms[1])
    return out


def guarded(plane: Plane, variant: Variant) -> bool:
    """The variant still refuses a spec edit (the after-row is not cheaper by guarding less)."""
    edit = json.dumps({"spec": {"parameters": {"edited": True}}})
    what = (f"flowruns.{variant.group}", "fr-1", "-n", NS, "--type=merge", "-p", edit)
    try:
        plane.kubectl("patch", *what)
    except subprocess.CalledProcessError as exc:
        return "spec.parameters is immutable" in exc.stderr
    raise AssertionError(f"{variant.label}: a spec edit was let through")


def profile(plane: Plane, chosen: list[Variant], figures: Figures, patches: int, out: Path) -> None:
    """Each variant's 10,000-task patches again, alone, under a CPU profile of the apiserver."""
    out.mkdir(parents=True, exist_ok=True)
    size = SIZES[-1]
    for index, variant in enumerate(chosen):
        seconds = int(figures[(variant.label, size)] * patches / 1000) + 5
        path = out / f"{index}.pprof"
        url = f"/debug/pprof/profile?seconds={seconds}"
        with path.open("wb") as sink:
            taking = subprocess.Popen([*plane.base, "get", "--raw", url], stdout=sink)
            for i in range(patches):
                body = json.dumps({"status": {"phase": "Running", "message": f"profiled {i}"}})
                what = (f"flowruns.{variant.group}", f"fr-{size}", "-n", NS)
                plane.kubectl("patch", *what, "--subresource=status", "--type=merge", "-p", body)
            taking.wait()
        print(f"profile of {variant.label!r}: {path} ({seconds} s, {patches} patches)")


def table(chosen: list[Variant], figures: Figures, refused: dict[tuple[str, int], str]) -> None:
    sizes = " | ".join(f"{n:,} task{'s' * (n > 1)}" for n in SIZES)
    print("\nstatus PATCH, API server mean latency (ratio to the 1-task FlowRun of the same CRD;")
    print("last column: the 10,000-task figure over the before-row's)\n")
    print(f"| CRD | {sizes} | vs before |\n|---|{'---:|' * (len(SIZES) + 1)}")
    first = figures[(chosen[0].label, SIZES[-1])]
    for variant in chosen:
        row = [figures.get((variant.label, n), math.nan) for n in SIZES]
        cells = " | ".join(f"{v:.1f} ms ({v / row[0]:.0f}x)" if v == v else "refused" for v in row)
        versus = f"{row[-1] / first:.2f}x" if row[-1] == row[-1] else "-"
        print(f"| {variant.label} | {cells} | {versus} |")
    for (label, size), why in refused.items():
        print(f"\n{label}, {size:,} tasks: refused by the API server: {why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--diagnose", action="store_true", help="also the variants locating it")
    parser.add_argument("--patches", type=int, default=10, help="status patches per FlowRun")
    parser.add_argument("--profile", type=Path, help="write apiserver CPU profiles here")
    parser.add_argument("--companions", action="store_true", help="also companion ConfigMaps")
    args = parser.parse_args()
    chosen = variants(args.diagnose)
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as tmp:
        bins = build.ensure_built()
        control = ControlPlane(
            Path(tmp) / "plane", bin_dir=bins, tie_to_parent=True, profiling=bool(args.profile)
        )
        control.start()
        try:
            plane = Plane(control)
            wait_for(lambda: plane.kubectl("get", "--raw", "/readyz"), timeout=60)
            plane.kubectl("create", "namespace", NS)
            refused = create(plane, chosen)
            after = chosen[1]
            wait_for(lambda: guarded(plane, after), timeout=60, what="the policy in force")
            figures = measure(plane, chosen, args.patches, refused)
            if args.profile:
                profile(plane, chosen, figures, args.patches, args.profile)
            extra = companions(plane, after, args.patches) if args.companions else {}
            issue13 = templated(plane, chosen, args.patches)
        finally:
            control.stop()
    table(chosen, figures, refused)
    print(f"\nstatus PATCH of the FlowRun of a {SIZES[-1]:,}-task FlowTemplate vs a 1-task inline")
    print(
        "FlowRun's, interleaved (issue 13)\n\n| the FlowRun | its PATCH | 1-task FlowRun | ratio |"
    )
    print("|---|---:|---:|---:|")
    for label, (mine, small) in issue13.items():
        print(f"| {label} | {mine:.1f} ms | {small:.1f} ms | {mine / small:.1f}x |")
    if extra:
        print("\ncompanion ConfigMap PATCH vs the 1-task FlowRun's status")
        print("PATCH, interleaved\n\n| companion holds | its PATCH | 1-task FlowRun | ratio |")
        print("|---|---:|---:|---:|")
        for label, (mine, small) in extra.items():
            print(f"| {label} | {mine:.1f} ms | {small:.1f} ms | {mine / small:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
