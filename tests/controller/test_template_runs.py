"""FlowRuns whose flow is a FlowTemplate (`spec.flow.templateRef`), under the shared operator
(in-process, Local Dask provider): the run copies the template when it starts (a ConfigMap owned
by the run) and never sees a later edit or deletion; a missing template keeps it Pending until
it exists; an invalid one fails it naming template and field; the garbage collector removes the
copy with its FlowRun."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun.api import templates
from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from flowrun.runs import companion
from support.flowruns import FlowRuns, task

pytestmark = pytest.mark.controlplane

LOCAL = {"type": "Dask", "dask": {"cluster": "Local"}}


def run_spec(template: str, **spec: Any) -> dict[str, Any]:
    return {"flow": {"templateRef": {"name": template}}, "executor": LOCAL, **spec}


def snapshot_of(frs: FlowRuns, name: str) -> dict[str, Any] | None:
    obj = frs.get(name)
    assert obj is not None
    uid = obj["metadata"]["uid"]
    for item in frs.kubectl.json("get", "configmaps", "-n", frs.namespace)["items"]:
        if any(r["uid"] == uid for r in item["metadata"].get("ownerReferences", [])):
            found: dict[str, Any] = item
            return found
    return None


ETL = {
    "parameters": [{"name": "x", "required": True}],
    "tasks": [
        task("a", "add", {"parameter": "x"}, 1),
        task("b", "double", {"task": "a"}),
    ],
}


def test_a_template_run_succeeds_and_records_its_copy(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    frs.apply_template("etl", ETL)
    frs.apply("nightly-1", run_spec("etl", parameters={"x": 4}, returnTasks=["b"]))
    frs.apply("nightly-2", run_spec("etl", parameters={"x": 10}, returnTasks=["b"]))
    one, two = frs.wait_phase("nightly-1"), frs.wait_phase("nightly-2")
    assert one["phase"] == "Succeeded", one
    assert one["results"] == {"b": 10}
    assert two["results"] == {"b": 22}
    assert {n: t["state"] for n, t in one["tasks"].items()} == dict.fromkeys("xab", "Success")
    template = frs.kubectl.json("get", "flowtemplate", "etl", "-n", frs.namespace)
    copy = snapshot_of(frs, "nightly-1")
    assert copy is not None
    assert one["template"] == {
        "name": "etl",
        "uid": template["metadata"]["uid"],
        "resourceVersion": template["metadata"]["resourceVersion"],
        "generation": 1,
        "configMap": copy["metadata"]["name"],
    }
    assert copy["immutable"] is True
    assert copy["metadata"]["ownerReferences"][0]["kind"] == "FlowRun"
    saved = templates.decode(copy["binaryData"][templates.SNAPSHOT_KEY])
    assert saved["spec"]["flow"] == ETL
    assert "tasks" not in (frs.get("nightly-1") or {})["spec"]["flow"]  # the run stays small
    assert "Succeeded" in frs.event_reasons("nightly-1")


def test_editing_or_deleting_the_template_does_not_change_a_started_run(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    key = f"edit-{frs.namespace}"  # the gate's files are the session's: one key per test
    flow = {"tasks": [task("wait", "gate", key, 1), task("b", "double", {"task": "wait"})]}
    frs.apply_template("gated", flow)
    frs.apply("started", run_spec("gated", returnTasks=["b"]))
    wait_for(lambda: frs.runs(f"{key}-started") >= 1, timeout=90, what="the gate task to start")
    edited = {"tasks": [task("wait", "add", 100, 100), task("b", "add", {"task": "wait"}, 1)]}
    frs.apply_template("gated", edited)
    frs.kubectl("delete", "flowtemplate", "gated", "-n", frs.namespace)
    frs.open_gate(key)
    status = frs.wait_phase("started")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"b": 2}  # the copy's flow: double(1), not add(200, 1)
    assert set(status["tasks"]) == {"wait", "b"}
    assert status["template"]["generation"] == 1


def test_a_missing_template_keeps_the_run_pending_until_it_exists(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    frs.apply("early", run_spec("late", returnTasks=["a"]))
    frs.apply("inline", {"flow": {"tasks": [task("a", "add", 1, 1)]}, "executor": LOCAL})
    pending = wait_for(
        lambda: (s := frs.status("early")).get("message", "").startswith("spec.flow") and s,
        timeout=60,
        what="the run to say its template is missing",
    )
    assert pending["phase"] == "Pending"
    assert "spec.flow.templateRef.name: FlowTemplate 'late' not found" in pending["message"]
    stalled = {c["type"]: c for c in pending["conditions"]}["Reconciling"]
    assert stalled["reason"] == "TemplateNotFound"
    event = wait_for(
        lambda: [e for e in frs.events("early") if e["reason"] == "TemplateNotFound"],
        what="the TemplateNotFound Event",
    )
    assert event[0]["type"] == "Warning"
    assert "spec.flow.templateRef.name" in event[0]["message"]
    assert frs.wait_phase("inline")["phase"] == "Succeeded"  # other runs go on
    assert frs.status("early")["phase"] == "Pending"
    frs.apply_template("late", {"tasks": [task("a", "add", 2, 3)]})
    status = frs.wait_phase("early", timeout=120)
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"a": 5}


def test_an_invalid_template_fails_the_run_naming_template_and_field(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    bad = {"tasks": [task("a", "add", 1, 1), task("b", "add", 1, 1, upstream=["nope"])]}
    frs.apply_template("broken", bad)
    frs.apply("doomed", run_spec("broken"))
    status = frs.wait_phase("doomed")
    assert status["phase"] == "Failed"
    assert status["message"].startswith(
        "FlowTemplate 'broken': spec.flow.tasks[1].upstream[0]: unknown task 'nope'"
    ), status
    assert {c["type"]: c for c in status["conditions"]}["Stalled"]["reason"] == "InvalidSpec"
    assert "InvalidSpec" in frs.event_reasons("doomed")


def test_the_garbage_collector_deletes_the_copy_with_its_flowrun(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    frs.apply_template("gc", {"tasks": [task("a", "add", 1, 1)]})
    frs.apply("collected", run_spec("gc"))
    assert frs.wait_phase("collected")["phase"] == "Succeeded"
    copy = snapshot_of(frs, "collected")
    assert copy is not None
    name = copy["metadata"]["name"]
    frs.kubectl("delete", "flowrun", "collected", "-n", frs.namespace, "--wait=true")

    def gone() -> bool:
        out = frs.kubectl("get", "configmap", name, "-n", frs.namespace, check=False)
        return out.returncode != 0 and "NotFound" in out.stderr

    # The garbage collector rediscovers resource types every 30 s: allow for that.
    wait_for(gone, timeout=120, interval=1, what="the copy garbage-collected")
    assert frs.kubectl.json("get", "flowtemplate", "gc", "-n", frs.namespace)  # template stays


def test_a_restarted_operator_resumes_from_the_copy_not_the_template(
    start_operator: Any, own_frs: FlowRuns
) -> None:
    """kill -9 of the operator mid-run, then the template edited and deleted: the next operator
    resumes the run from its copy (without it, the run would wait for a template that is gone)."""
    frs, ns = own_frs, own_frs.namespace
    flow = {"tasks": [task("wait", "gate", f"r-{ns}", 2), task("b", "double", {"task": "wait"})]}
    frs.apply_template("resumed", flow)
    first = start_operator("-n", ns, "--allow-in-process")
    frs.apply("resume", run_spec("resumed", returnTasks=["b"]))
    wait_for(lambda: frs.runs(f"r-{ns}-started") >= 1, timeout=90, what="the gate task to start")
    first.kill()
    frs.apply_template("resumed", {"tasks": [task("wait", "add", 1, 1)]})
    frs.kubectl("delete", "flowtemplate", "resumed", "-n", ns)
    start_operator("-n", ns, "--allow-in-process")
    wait_for(lambda: "Resumed" in frs.event_reasons("resume"), timeout=90, what="Resumed event")
    frs.open_gate(f"r-{ns}")
    status = frs.wait_phase("resume")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"b": 4}
    assert status["operatorRestarts"] == 1


def test_a_big_template_run_writes_its_routine_progress_beside_the_flowrun(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    """1,000 tasks in the template: the run's routine progress goes to its live-status ConfigMap
    (flowrun.runs.companion), as a big inline flow's does."""
    n = companion.BIG_FLOW_TASKS
    frs.apply_template("big", {"tasks": [task(f"t{i}", "add", i, 1) for i in range(n)]})
    frs.apply("bigrun", run_spec("big"))
    status = frs.wait_phase("bigrun", timeout=240)
    assert status["phase"] == "Succeeded", status
    assert status["progress"] == f"{n}/{n}"
    live = frs.companion("bigrun", "Succeeded")
    assert live["data"]["progress"] == f"{n}/{n}"


def test_a_run_waiting_for_its_template_can_be_cancelled_or_deleted(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    for name in ("cancelled", "deleted"):
        frs.apply(name, run_spec("never"))
    for name in ("cancelled", "deleted"):
        wait_for(
            lambda n=name: "TemplateNotFound" in frs.event_reasons(n),
            timeout=60,
            what=f"{name} waiting for its template",
        )
    frs.kubectl("patch", "flowrun", "cancelled", "-n", frs.namespace, "--type=merge",
                "-p", '{"spec":{"cancel":true}}')  # fmt: skip
    status = frs.wait_phase("cancelled")
    assert status["phase"] == "Cancelled", status
    frs.kubectl("delete", "flowrun", "deleted", "-n", frs.namespace, "--timeout=60s")
    assert frs.get("deleted") is None  # the operator let it go (its finalizer removed)


def test_a_run_waiting_for_its_template_still_ends_at_its_deadline(
    shared_operator: OperatorProcess, frs: FlowRuns
) -> None:
    # activeDeadlineSeconds bounds the whole run, the wait for a missing template included: a
    # template that never comes ends the run Failed instead of leaving it Pending for ever.
    frs.apply("bounded", run_spec("never-comes", activeDeadlineSeconds=5))
    frs.assert_waited_for_template_until_deadline("bounded", 5)
