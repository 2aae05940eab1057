"""Issue 10, items 1, 2 and 5, against the real API server and the real operator process:
no Secret outside the FlowRun's namespace, no secret value in status or Events, and no result
that keeps a run (or its neighbours) from its final status."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import kr8s.asyncio
import pytest

from flowrun.controller import kube
from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from flowrun.runs.secrets import spellings
from flowrun.runs.statuswriter import StatusWriter
from support.flowruns import FlowRuns, local_spec, make_namespace, task

pytestmark = pytest.mark.controlplane

HOSTILE_NAMES = ["../../{other}/secrets/target", "..", "target/../../../{other}/secrets/target",
                 "%2e%2e", "Target", "target?x=1"]  # fmt: skip


def flowrun(namespace: str, spec: dict[str, Any], name: str = "fr") -> str:
    return json.dumps(
        {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": "FlowRun",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def test_hostile_secret_names_are_refused_at_apply(kubectl: Any, flowrun_crd: None) -> None:
    namespace = make_namespace(kubectl)
    try:
        for hostile in HOSTILE_NAMES:
            ref = {"name": hostile.format(other="kube-system"), "key": "k"}
            spec = local_spec(
                [task("a", "echo", {"parameter": "t"})],
                parametersFrom=[{"name": "t", "secretKeyRef": ref}],
            )
            out = kubectl("apply", "-f", "-", input=flowrun(namespace, spec), check=False)
            assert out.returncode != 0, f"{hostile!r} was accepted"
            assert "spec.parametersFrom[0].secretKeyRef.name" in out.stderr, out.stderr
        ok = {"name": "creds.v1-a", "key": "api_token.2"}
        spec = local_spec(
            [task("a", "echo", 1)], parametersFrom=[{"name": "t", "secretKeyRef": ok}]
        )
        kubectl("apply", "--dry-run=server", "-f", "-", input=flowrun(namespace, spec))
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_secret_reader_cannot_leave_its_namespace(kubectl: Any, kubeconfig_path: Path) -> None:
    mine, other = make_namespace(kubectl), make_namespace(kubectl)
    try:
        for namespace, value in ((mine, "mine"), (other, "stolen")):
            kubectl("create", "secret", "generic", "target", "-n", namespace,
                    f"--from-literal=k={value}")  # fmt: skip
        kubectl("create", "secret", "generic", "creds.v1", "-n", mine, "--from-literal=k=v1")

        async def read_all() -> tuple[list[str], Any, Any]:
            reader = kube.KubeSecretReader(await kr8s.asyncio.api(kubeconfig=str(kubeconfig_path)))
            refused: list[str] = []
            for hostile in HOSTILE_NAMES:
                try:
                    data = await reader.read_secret(mine, hostile.format(other=other))
                except ValueError:
                    refused.append(hostile)
                else:
                    values = [base64.b64decode(v) for v in (data or {}).values()]
                    assert b"stolen" not in values, f"{hostile!r} read the other namespace"
            return (
                refused,
                await reader.read_secret(mine, "creds.v1"),
                await reader.read_secret(mine, "absent"),
            )

        refused, dotted, absent = asyncio.run(read_all())
        assert refused == HOSTILE_NAMES
        assert dotted is not None
        assert base64.b64decode(dotted["k"]) == b"v1"
        assert absent is None
    finally:
        for namespace in (mine, other):
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)


SECRET = 'pa"ss\\wörd-T0KEN-1234'


def test_secret_values_never_reach_status_results_or_events(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    frs.kubectl("create", "secret", "generic", "creds", "-n", frs.namespace,
                f"--from-literal=token={SECRET}")  # fmt: skip
    token = {"parameter": "token"}
    tasks = [
        {"name": "as-str", "fn": "builtins:str", "args": [token]},
        {"name": "as-list", "fn": "builtins:list", "args": [token]},
        {"name": "as-json", "fn": "json:dumps", "args": [token]},
        task("sliced", "tail", token, 3),
        task("echoed", "leak", token),
        task("repr", "leak_repr", token),
    ]
    spec = local_spec(
        tasks,
        flow={"referenceTasks": ["as-str"], "parameters": [{"name": "token", "required": True}]},
        parametersFrom=[{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
        returnTasks=["as-str", "as-list", "as-json", "sliced"],
    )
    frs.apply("leaky", spec)
    status = frs.wait_phase("leaky")
    assert status["phase"] == "Succeeded", status
    assert set(status["results"]) == {"as-str", "as-list", "as-json", "sliced"}
    assert status["tasks"]["echoed"]["state"] == "Failed"
    wait_for(lambda: len(frs.events("leaky")) >= 5 and "TaskFailed" in frs.event_reasons("leaky"),
             what="TaskFailed events")  # fmt: skip
    whole = "\n".join(strings_in([frs.get("leaky"), frs.events("leaky")]))
    for spelling in spellings(SECRET):
        for i in range(len(spelling) - 7):
            assert spelling[i : i + 8] not in whole, spelling[i : i + 8]
    assert base64.b64encode(SECRET.encode()).decode() not in whole


def strings_in(value: Any) -> list[str]:
    """Every string (keys included) of a JSON value, as a reader of the object sees them."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings_in(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else [json.dumps(value)]


def test_non_finite_results_do_not_keep_any_run_from_its_end(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    poisoned = local_spec(
        [
            {"name": "nan", "fn": "builtins:float", "args": ["nan"]},
            {"name": "inf", "fn": "builtins:float", "args": ["-inf"]},
            {"name": "huge", "fn": "builtins:pow", "args": [10, 400]},
        ],
        returnTasks=["nan", "inf", "huge"],
    )
    frs.apply("poisoned", poisoned)
    for i in range(6):
        frs.apply(f"plain-{i}", local_spec([task("a", "add", i, 1)], returnTasks=["a"]))
    for i in range(6):
        plain = frs.wait_phase(f"plain-{i}", timeout=120)
        assert plain["phase"] == "Succeeded", plain
        assert plain["results"] == {"a": i + 1}
    status = frs.wait_phase("poisoned", timeout=120)
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"nan": "NaN", "inf": "-Infinity", "huge": str(10**400)}


def test_a_refused_status_patch_still_writes_the_runs_end(
    kubeconfig_path: Path, own_frs: FlowRuns
) -> None:
    """No operator here: the real writer and sink against the real API server, with a patch
    the server refuses (an integer beyond what its JSON decoder takes)."""
    own_frs.apply("refused", local_spec([task("a", "add", 1, 2)], cancel=True))

    async def write() -> None:
        sink = kube.status_sink(await kr8s.asyncio.api(kubeconfig=str(kubeconfig_path)))
        async with StatusWriter(sink, namespace=own_frs.namespace, name="refused") as writer:
            writer.update(
                {
                    "phase": "Succeeded",
                    "message": "Flow run succeeded.",
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "Succeeded",
                            "message": "done",
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                        }
                    ],
                    "results": {"a": 10**400},
                    "progress": "1/1",
                }
            )

    asyncio.run(write())
    status = own_frs.status("refused")
    assert status["phase"] == "Succeeded"
    assert status["conditions"][0]["type"] == "Ready"
    assert status["progress"] == "1/1"
    assert "results" not in status
