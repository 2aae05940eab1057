"""FlowRuns that run, on the Local Dask provider under the shared operator: what ends up in
status and Events for success, failure, retries, mapping, start tasks, results, secrets."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, local_spec, task

pytestmark = pytest.mark.controlplane


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status.get("conditions", [])}


def test_success_with_parameters_and_return_results(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    tasks = [
        task("a", "add", {"parameter": "x"}, 1),
        task("b", "double", {"task": "a"}),
        task("c", "add", {"task": "a"}, {"task": "b"}),
    ]
    spec = local_spec(
        tasks,
        flow={"parameters": [{"name": "x", "required": True}]},
        parameters={"x": 4},
        returnTasks=["c"],
    )
    frs.apply("etl", spec)
    status = frs.wait_phase("etl")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"c": 15}
    assert status["progress"] == "4/4"  # the parameter x is a task too, as in Prefect
    assert {name: t["state"] for name, t in status["tasks"].items()} == dict.fromkeys(
        "xabc", "Success"
    )
    assert status["tasks"]["a"]["runCount"] == 1
    assert status["tasks"]["a"]["startTime"] <= status["tasks"]["a"]["endTime"]
    assert conditions(status) == {
        "Ready": "True",
        "Succeeded": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert status["observedGeneration"] == 1
    assert status["cluster"]["name"].startswith("fr-etl-")
    reasons = wait_for(
        lambda: (r := frs.event_reasons("etl")) >= {"ClusterDeleted", "Succeeded"} and r,
        what="events",
    )
    assert {"ClusterCreated", "Running"} <= reasons


def test_task_failure_and_reference_tasks(shared_operator: OperatorProcess, frs: FlowRuns) -> None:
    frs.apply(
        "fails", local_spec([task("a", "fail", "disk full"), task("b", "double", {"task": "a"})])
    )
    frs.apply(
        "ref-ok",
        local_spec(
            [task("a", "add", 1, 2), task("bad", "fail", "ignored")],
            flow={"referenceTasks": ["a"]},
        ),
    )
    fails = frs.wait_phase("fails")
    assert fails["phase"] == "Failed"
    assert fails["tasks"]["a"]["state"] == "Failed"
    assert "disk full" in fails["tasks"]["a"]["message"]
    assert fails["tasks"]["b"]["state"] == "TriggerFailed"
    assert fails["failed"] >= 1
    assert conditions(fails)["Stalled"] == "True"
    assert "TaskFailed" in frs.event_reasons("fails")

    ok = frs.wait_phase("ref-ok")
    assert ok["phase"] == "Succeeded", ok
    assert ok["tasks"]["bad"]["state"] == "Failed"


def test_retries(shared_operator: OperatorProcess, frs: FlowRuns) -> None:
    key = f"retry-{frs.namespace}"
    frs.apply(
        "retries",
        local_spec([task("f", "flaky", key, 2, maxRetries=3, retryDelaySeconds=0.2)]),
    )
    status = frs.wait_phase("retries")
    assert status["phase"] == "Succeeded", status
    assert status["tasks"]["f"]["runCount"] == 3


def test_mapping_counts_children_and_names_failures(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    tasks = [
        task("n", "numbers", 6),
        {
            "name": "check",
            "fn": "frtasks:fail_on",
            "kwargs": {"x": {"task": "n", "map": True}, "bad": 3},
        },
        task("d", "double", {"task": "n", "map": True}),
        task("t", "total", {"task": "d"}),
    ]
    frs.apply("mapping", local_spec(tasks, returnTasks=["t"], flow={"referenceTasks": ["t"]}))
    status = frs.wait_phase("mapping")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"t": 30}
    check = status["tasks"]["check"]
    assert check["state"] == "Mapped"
    assert check["children"]["total"] == 6
    assert check["children"]["Success"] == 5
    assert check["children"]["Failed"] == 1
    (failed,) = check["failedChildren"]
    assert failed["index"] == 3
    assert "child 3 is bad" in failed["message"]


def test_start_tasks_use_given_task_states(shared_operator: OperatorProcess, frs: FlowRuns) -> None:
    key = f"start-{frs.namespace}"
    tasks = [task("a", "mark", key, [1, 2]), task("b", "total", {"task": "a"})]
    spec = local_spec(
        tasks,
        startTasks=["b"],
        taskStates={"a": {"state": "Success", "result": [10, 20]}},
        returnTasks=["b"],
    )
    frs.apply("start", spec)
    status = frs.wait_phase("start")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"b": 30}
    assert frs.runs(key) == 0


def test_secret_parameters_never_reach_status_or_events(
    shared_operator: OperatorProcess, frs: FlowRuns, kubectl: Any
) -> None:
    secret = "s3cr3t-T0KEN-value"
    kubectl(
        "create",
        "secret",
        "generic",
        "creds",
        f"--from-literal=token={secret}",
        "-n",
        frs.namespace,
    )
    spec = local_spec(
        [task("login", "leak", {"parameter": "token"})],
        flow={"parameters": [{"name": "token", "required": True}]},
        parametersFrom=[{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
    )
    frs.apply("secret", spec)
    status = frs.wait_phase("secret")
    assert status["phase"] == "Failed"
    assert "could not log in with token ***" in status["tasks"]["login"]["message"]
    wait_for(lambda: "TaskFailed" in frs.event_reasons("secret"), what="TaskFailed event")
    whole = json.dumps(frs.get("secret")) + json.dumps(frs.events("secret"))
    assert secret not in whole
    assert base64.b64encode(secret.encode()).decode() not in whole


def test_an_in_process_operator_says_it_does_not_apply_spec_runner(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    """The shared operator runs flows in its own process: a FlowRun that sizes its runner Pod
    runs, and its author is told once that the field had no effect; one without it is not."""
    memory = {"resources": {"limits": {"memory": "1Gi"}}}
    frs.apply("sized", local_spec([task("a", "add", 1, 2)], runner=memory))
    frs.apply("plain", local_spec([task("a", "add", 1, 2)]))
    for name in ("sized", "plain"):
        assert frs.wait_phase(name)["phase"] == "Succeeded"
    # kopf posts a run's Events in order: once its end's is there, RunnerIgnored would be too.
    ends = ("sized", "plain")
    wait_for(lambda: all("Succeeded" in frs.event_reasons(n) for n in ends), what="the ends")
    ignored = [e for e in frs.events("sized") if e["reason"] == "RunnerIgnored"]
    assert [e["type"] for e in ignored] == ["Warning"], ignored  # one Event, said once
    assert ignored[0]["message"].startswith("spec.runner is not applied: this operator runs the")
    assert "--allow-in-process" in ignored[0]["message"]
    assert "RunnerIgnored" not in frs.event_reasons("plain")
