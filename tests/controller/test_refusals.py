"""FlowRuns that cannot run: refused by the API server at apply time, or Failed with a reason
and a Warning Event by the operator. None of them may disturb a healthy FlowRun."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from support.flowruns import FlowRuns, local_spec, task

pytestmark = pytest.mark.controlplane


def test_bad_shape_is_refused_by_kubectl_apply_naming_the_field(
    kubectl: Any, op_namespace: str
) -> None:
    body = {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": "bad-shape", "namespace": op_namespace},
        "spec": {
            "flow": {"tasks": [{"name": "a", "fn": "frtasks:add"}]},
            "executor": {"type": "Spark"},
        },
    }
    out = kubectl("apply", "-f", "-", input=json.dumps(body), check=False)
    assert out.returncode != 0
    assert "spec.executor.type" in out.stderr
    assert kubectl("get", "flowruns", "-n", op_namespace, "-o", "name").stdout.strip() == ""


def test_semantic_errors_fail_with_reason_and_event(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    tasks = [task("a", "add", 1, 2), task("b", "double", {"task": "a"})]
    frs.apply("unknown-start", local_spec(tasks, startTasks=["nope"]))
    frs.apply(
        "missing-param",
        local_spec(tasks, flow={"parameters": [{"name": "date", "required": True}]}),
    )
    frs.apply(
        "missing-secret",
        local_spec(
            tasks,
            flow={"parameters": [{"name": "token"}]},
            parametersFrom=[{"name": "token", "secretKeyRef": {"name": "absent", "key": "k"}}],
        ),
    )
    frs.apply("healthy", local_spec([task("a", "add", 1, 2)]))

    unknown = frs.wait_phase("unknown-start")
    assert unknown["phase"] == "Failed"
    assert "spec.startTasks[0]: unknown task 'nope'" in unknown["message"]
    stalled = {c["type"]: c for c in unknown["conditions"]}["Stalled"]
    assert stalled["status"] == "True"
    assert stalled["reason"] == "InvalidSpec"

    missing = frs.wait_phase("missing-param")
    assert missing["phase"] == "Failed"
    assert "missing required parameter 'date'" in missing["message"]

    secret = frs.wait_phase("missing-secret")
    assert secret["phase"] == "Failed"
    assert "Secret 'absent' not found" in secret["message"]

    for name in ("unknown-start", "missing-param", "missing-secret"):
        warnings = [e for e in frs.events(name) if e["type"] == "Warning"]
        assert warnings, f"no Warning Event for {name}"
    assert {"InvalidSpec", "SecretNotFound"} <= {
        e["reason"] for n in ("unknown-start", "missing-secret") for e in frs.events(n)
    }
    assert frs.wait_phase("healthy")["phase"] == "Succeeded"


def test_an_unimportable_flow_ref_is_the_users_error(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    # Imported in the operator (Local executor) or on a Dask worker, where the tasks run.
    ref = {"ref": "no_such_package_here.flows:flow"}
    frs.apply("ref-local", {"flow": ref, "executor": {"type": "Local"}})
    frs.apply("ref-dask", {"flow": ref, "executor": {"type": "Dask", "dask": {"cluster": "Local"}}})
    for name in ("ref-local", "ref-dask"):
        status = frs.wait_phase(name)
        assert status["phase"] == "Failed", status
        assert "spec.flow.ref: cannot load 'no_such_package_here.flows:flow'" in status["message"]
        assert "ModuleNotFoundError" in status["message"]
        stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
        assert stalled["reason"] == "UnresolvableFlow"
        assert "UnresolvableFlow" in frs.event_reasons(name)
