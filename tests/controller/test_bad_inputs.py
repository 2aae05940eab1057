"""Hundreds of malformed and hostile FlowRuns against one operator (issue 10's bad-input test).

Every manifest is generated from a table below. Each is either refused at apply with the field
named in the API server's answer, or accepted and ended by the operator in a final phase with a
reason (and, where a field is at fault, the field named in the message). Meanwhile the operator
never restarts and keeps answering /healthz, and a FlowRun that finished before all this keeps
its status unchanged.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns

pytestmark = pytest.mark.controlplane

TERMINAL = ("Succeeded", "Failed", "Cancelled")


def base() -> dict[str, Any]:
    return {
        "flow": {"tasks": [{"name": "a", "fn": "frtasks:add", "args": [1, 2]},
                           {"name": "b", "fn": "frtasks:double", "args": [{"task": "a"}]}]},
        "executor": {"type": "Local"},
    }  # fmt: skip


def with_value(path: str, value: Any) -> dict[str, Any]:
    """The base spec with `value` at a dotted path (`flow.tasks.0.fn`)."""
    spec = base()
    node: Any = spec
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key, after in itertools.pairwise(keys):
        if isinstance(key, str) and key not in node:
            node[key] = [] if isinstance(after, int) else {}
        node = node[key]
    last = keys[-1]
    if isinstance(last, int) and last == len(node):
        node.append(value)
    else:
        node[last] = value
    return spec


def nested(levels: int) -> Any:
    value: Any = 1
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


# -- refused at apply: (field the answer must name, spec) -------------------------------------

WRONG_TYPES: dict[str, list[Any]] = {
    "executor.type": [5, True, [1], {"x": 1}, "Spark", ""],
    "executor.dask.workers": ["many", -1, 1.5, [1], 0, 10**6],
    "executor.dask.cluster": [7, "Mars", ["Local"]],
    "flow.tasks": ["x", 5, {"a": 1}, True],
    "flow.tasks.0.name": [123, "", "x" * 300, [1], {"n": 1}],
    "flow.tasks.0.fn": ["nofn", "a:b:c", "../x:y", 5, "é:f", "", "x" * 300, "mod:"],
    "flow.tasks.0.maxRetries": [-1, "3", 1.5, [1]],
    "flow.tasks.0.retryDelaySeconds": [-1, "soon", [1]],
    "flow.tasks.0.timeoutSeconds": [-5, "ten", {"s": 1}],
    "flow.tasks.0.upstream": ["a", [5], {"a": 1}],
    "flow.tasks.0.tags": ["t", [5]],
    "flow.tasks.0.trigger": ["sometimes", 5, ["always_run"]],
    "flow.tasks.0.cacheValidator": ["never", 5],
    "flow.tasks.0.kwargs": ["k", [1, 2], 5],
    "flow.tasks.1.skipOnUpstreamSkip": ["no", 3],
    "flow.parameters": ["p", 5, {"p": 1}],
    "flow.name": [5, "x" * 300],
    "activeDeadlineSeconds": [0, -5, "10", 1.5],
    "ttlSecondsAfterFinished": [-1, "1h"],
    "cancel": ["yes", 1, [True]],
    "returnTasks": ["a", [5], {"a": 1}],
    "startTasks": [5, "a"],
    "taskStates": ["Success", [1], {"a": "Success"}, {"a": {"state": "Exploded"}}],
    "parameters": [[1], "p", 5],
    "parametersFrom": ["s", {"name": "t"}, [5]],
    "parametersFrom.0": [
        {"name": "t", "secretKeyRef": {"name": "../../other/secrets/x", "key": "k"}},
        {"name": "t", "secretKeyRef": {"name": "UPPER", "key": "k"}},
        {"name": "t", "secretKeyRef": {"name": "a/b", "key": "k"}},
        {"name": "t", "secretKeyRef": {"name": "s" * 300, "key": "k"}},
        {"name": "t", "secretKeyRef": {"name": "ok", "key": "k/../x"}},
        {"name": "t", "secretKeyRef": {"name": "ok"}},
        {"name": "t"},
    ],
    "flow.tasks.0.args": ["x", 5, {"a": 1}],
    "flow.referenceTasks": ["a", [5]],
    "flow.parameters.0": [{"name": 5}, {"required": True}, "p", {"name": "p", "required": "y"}],
    "executor.dask.image": [5, ["img"]],
    "executor.dask.address": [5, ["tcp://x:1"]],
    "executor.dask.resources": ["big", [1]],
    "bogus": [1, "x"],
    "flow.bogus": [1],
    "flow.tasks.0.bogus": [True],
    "executor.bogus": ["x"],
}
# Where the answer names the field differently from the dotted path written here.
NAMED_AS: dict[str, str] = {}


def field_name(path: str) -> str:
    if path in NAMED_AS:
        return NAMED_AS[path]
    parts = path.split(".")
    out = "spec"
    for part in parts:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def refused_cases() -> list[tuple[str, dict[str, Any], str]]:
    cases = []
    for path, values in WRONG_TYPES.items():
        for value in values:
            spec = with_value(path, value)
            cases.append((path, spec, field_name(path)))
    both = base()
    both["flow"]["ref"] = "frflows:totals"
    cases.append(("flow", both, "spec.flow"))
    cases.append(("flow", with_value("flow", {}), "spec.flow"))
    for i in range(5):
        twice = base()
        twice["flow"]["tasks"] += [{"name": "ab"[i % 2], "fn": "frtasks:add"}] * (i + 1)
        cases.append(("flow.tasks", twice, "task names must be unique"))
    cases.append(
        ("flow.tasks.0.fn", with_value("flow.tasks.0.fn", "os:system;rm"), "spec.flow.tasks[0].fn")
    )
    return cases


def apply_checked(
    frs: FlowRuns, name: str, spec: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    body = {"apiVersion": "flowrun.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name, "namespace": frs.namespace}, "spec": spec}  # fmt: skip
    result: subprocess.CompletedProcess[str] = frs.kubectl(
        "apply", "-f", "-", input=json.dumps(body), check=False
    )
    return result


# -- accepted, ended by the operator: (what the message must name, spec) ----------------------


@dataclass
class Case:
    name: str
    spec: dict[str, Any]
    named: str | None = None  # a text the final message must contain
    then: Callable[[FlowRuns, str], None] | None = None  # e.g. cancel it while it runs
    phases: tuple[str, ...] = ("Failed",)


def task(name: str, fn: str, *args: Any, **options: Any) -> dict[str, Any]:
    return {"name": name, "fn": fn, "args": list(args), **options}


def inline(*tasks: dict[str, Any], **spec: Any) -> dict[str, Any]:
    flow = {"tasks": list(tasks), **spec.pop("flow", {})}
    return {"flow": flow, "executor": {"type": "Local"}, **spec}


def cancel_now(frs: FlowRuns, name: str) -> None:
    wait_for(lambda: frs.status(name).get("phase") == "Running", timeout=120, what=name)
    frs.kubectl("patch", "flowrun", name, "-n", frs.namespace, "--type=merge",
                "-p", '{"spec": {"cancel": true}}')  # fmt: skip


def operator_cases() -> list[Case]:
    ok = task("a", "frtasks:add", 1, 2)
    cases: list[Case] = []
    for i in range(8):
        ref = {"task": f"nope{i}"}
        cases.append(Case(f"unknown-ref-{i}", inline(ok, task("b", "frtasks:double", ref)),
                          "spec.flow.tasks[1].args[0]"))  # fmt: skip
    for i, odd in enumerate([{"task": 5}, {"parameter": ["p"]}, {"task": "a", "parameter": "p"},
                             {"task": "a", "bogus": 1}, {"parameter": ""}]):  # fmt: skip
        cases.append(Case(f"odd-ref-{i}", inline(ok, task("b", "frtasks:echo", odd)),
                          "spec.flow.tasks[1].args[0]"))  # fmt: skip
    cases.append(Case("no-tasks", inline(), phases=("Succeeded", "Failed")))
    for n in range(2, 8):
        ring = [task(f"t{k}", "frtasks:echo", 1, upstream=[f"t{(k + 1) % n}"]) for k in range(n)]
        cases.append(Case(f"cycle-{n}", inline(*ring), "cycle"))
    for i in range(5):
        cases.append(Case(f"start-{i}", inline(ok, startTasks=[f"x{i}"]), "spec.startTasks[0]"))
        cases.append(Case(f"return-{i}", inline(ok, returnTasks=[f"x{i}"]), "spec.returnTasks[0]"))
        cases.append(Case(f"given-{i}", inline(ok, taskStates={f"x{i}": {"state": "Success"}}),
                          f"spec.taskStates.x{i}"))  # fmt: skip
        cases.append(Case(f"param-{i}", inline(
            task("a", "frtasks:echo", {"parameter": f"p{i}"}),
            flow={"parameters": [{"name": f"p{i}", "required": True}]}), f"'p{i}'"))  # fmt: skip
        cases.append(Case(f"no-secret-{i}", inline(
            task("a", "frtasks:echo", {"parameter": "t"}), flow={"parameters": [{"name": "t"}]},
            parametersFrom=[{"name": "t", "secretKeyRef": {"name": f"absent-{i}", "key": "k"}}]),
            f"absent-{i}"))  # fmt: skip
        cases.append(Case(f"no-module-{i}", inline(task("a", f"nosuchmod{i}:f")), "a"))
        cases.append(Case(f"no-function-{i}", inline(task("a", f"frtasks:nothing{i}")), "a"))
    for levels in (101, 150, 300, 450, 600):
        cases.append(Case(f"deep-{levels}", inline(task("a", "frtasks:echo", nested(levels))),
                          "nested deeper than 100 levels"))  # fmt: skip
    for i, ref in enumerate(["nosuch.mod:flow", "frflows:nothing", "frtasks:add"]):
        cases.append(Case(f"ref-{i}", {"flow": {"ref": ref}, "executor": {"type": "Local"}},
                          "spec.flow.ref"))  # fmt: skip
    strange = [("nan", "builtins:float", "nan"), ("inf", "builtins:float", "inf"),
               ("ninf", "builtins:float", "-inf"), ("bigint", "builtins:pow", 10, 30),
               ("huge", "frtasks:echo", "x" * 200_000), ("object", "builtins:object")]  # fmt: skip
    for name, fn, *args in strange:
        cases.append(Case(f"result-{name}", inline(task("r", fn, *args), returnTasks=["r"]),
                          phases=("Succeeded",)))  # fmt: skip
    for i, odd in enumerate(["ünïcödé", "任务", "tâche-ü", "a" * 253, "🙂"]):
        cases.append(Case(f"name-{i}", inline(task(odd, "frtasks:add", 1, 1)),
                          phases=("Succeeded",)))  # fmt: skip
    gate = task("g", "frtasks:gate", "never-opened", None, 90)
    for i in range(4):
        cases.append(Case(f"cancel-created-{i}", {**inline(ok), "cancel": True},
                          "spec.cancel", phases=("Cancelled",)))  # fmt: skip
        cases.append(Case(f"cancel-running-{i}", inline(gate), "spec.cancel",
                          then=cancel_now, phases=("Cancelled",)))  # fmt: skip
        cases.append(Case(f"deadline-{i}", inline(gate, activeDeadlineSeconds=2),
                          "activeDeadlineSeconds"))  # fmt: skip
    return cases


def test_hundreds_of_bad_inputs_never_disturb_the_operator_or_other_runs(
    start_operator: Callable[..., OperatorProcess], own_frs: FlowRuns
) -> None:
    frs = own_frs
    operator = start_operator("-n", frs.namespace, "--allow-in-process")
    frs.apply("bystander", inline(task("a", "frtasks:add", 1, 2), returnTasks=["a"]))
    before = frs.wait_phase("bystander")
    assert before["phase"] == "Succeeded"

    refused = refused_cases()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: apply_checked(frs, f"refused-{i}", refused[i][1]),
                                range(len(refused))))  # fmt: skip
    wrong = [
        (path, named, answer.returncode, answer.stderr[-300:] or json.dumps(spec)[-200:])
        for (path, spec, named), answer in zip(refused, answers, strict=True)
        if answer.returncode == 0 or named not in answer.stderr
    ]
    assert not wrong, "\n".join(map(str, wrong))
    assert frs.kubectl("get", "flowruns", "-n", frs.namespace, "-o", "name").stdout.split() == [
        "flowrun.flowrun.dev/bystander"
    ]

    cases = operator_cases()
    assert len(refused) + len(cases) >= 200, (len(refused), len(cases))
    answers = {c.name: apply_checked(frs, c.name, c.spec) for c in cases}
    # The API server may already refuse some (CEL rules): then with the field named.
    early = [c for c in cases if answers[c.name].returncode != 0]
    for case in early:
        assert case.named is not None, (case.name, answers[case.name].stderr)
        assert case.named in answers[case.name].stderr, (case.name, answers[case.name].stderr)
    cases = [c for c in cases if c not in early]
    for case in cases:
        if case.then is not None:
            case.then(frs, case.name)

    def all_final() -> bool:
        assert operator.ready(), "the operator stopped answering /healthz"  # raises if it died
        return all(frs.status(c.name).get("phase") in TERMINAL for c in cases)

    wait_for(all_final, timeout=600, interval=2, what="every FlowRun in a final phase")
    wrong = []
    for case in cases:
        status = frs.status(case.name)
        reasons = {c["type"]: c["reason"] for c in status.get("conditions", ())}
        message = status.get("message", "")
        if (
            status.get("phase") not in case.phases
            or not reasons.get("Ready")
            or (case.named is not None and case.named not in message)
        ):
            wrong.append((case.name, case.named, status.get("phase"), reasons.get("Ready"),
                          message[:300]))  # fmt: skip
    assert not wrong, "\n".join(map(str, wrong))
    assert operator.proc is not None
    assert operator.proc.poll() is None  # never restarted
    assert frs.status("bystander") == before
