"""A FlowTemplate run on the product path: the operator (no --allow-in-process) takes the run's
copy of its template before it creates the runner; the runner (`flowrun runner` as a host process
with the run's own ServiceAccount token, as the kubelet would start it) reads that copy, and only
that: an edit and a deletion of the template between the two change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowrun.cluster import base
from flowrun.controller import runner_objects as objects
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, task
from support.runners import finish, runner

pytestmark = [pytest.mark.controlplane]

IMAGE = "registry.invalid/flows:1"


def test_the_runner_reads_the_copy_the_operator_took(
    start_operator: Any, own_frs: FlowRuns, sa_kubeconfig: Any, tmp_path: Path
) -> None:
    frs, ns = own_frs, own_frs.namespace
    start_operator("-n", ns, f"--default-image={IMAGE}")
    frs.apply_template(
        "etl", {"tasks": [task("a", "add", 1, 2), task("b", "double", {"task": "a"})]}
    )
    spec = {
        "flow": {"templateRef": {"name": "etl"}},
        "executor": {"type": "Local"},
        "returnTasks": ["b"],
    }
    frs.apply("viarunner", spec)
    obj = frs.get("viarunner")
    assert obj is not None
    owner = base.Owner("flowrun.dev/v1alpha1", "FlowRun", "viarunner", ns, obj["metadata"]["uid"])
    copy = objects.snapshot_name(owner)
    wait_for(
        lambda: (
            frs.kubectl("get", "job", objects.runner_name(owner), "-n", ns, check=False).returncode
            == 0
        ),
        timeout=60,
        what="the runner Job (created after the copy)",
    )
    recorded = wait_for(
        lambda: frs.status("viarunner").get("template"), what="status.template from the operator"
    )
    assert (recorded["name"], recorded["configMap"]) == ("etl", copy)
    # Between the copy and the runner's start, the template changes and goes away.
    frs.apply_template("etl", {"tasks": [task("a", "add", 100, 100)]})
    frs.kubectl("delete", "flowtemplate", "etl", "-n", ns)
    kubeconfig = sa_kubeconfig(ns, objects.runner_name(owner))
    # Its identity reads its run's copy, and no other ConfigMap nor any template (its Role
    # is deleted with the rest when the run ends).
    frs.apply_template("other", {"tasks": [task("a", "add", 1, 1)]})
    frs.kubectl("create", "configmap", "other", "-n", ns, "--from-literal=a=b")

    def as_runner(*args: str) -> Any:
        return frs.kubectl(*args, "-n", ns, "--kubeconfig", str(kubeconfig), check=False)

    assert as_runner("get", "configmap", copy).returncode == 0
    for denied in (("get", "configmap", "other"), ("get", "flowtemplate", "other")):
        out = as_runner(*denied)
        assert out.returncode != 0, denied
        assert "forbidden" in out.stderr.lower(), (denied, out.stderr)
    proc = runner(kubeconfig, owner, tmp_path)
    assert finish(proc, tmp_path, "viarunner") == 0, (tmp_path / "runner-viarunner.log").read_text()
    status = frs.wait_phase("viarunner")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"b": 6}
    assert {n: t["state"] for n, t in status["tasks"].items()} == {"a": "Success", "b": "Success"}


def test_on_the_product_path_a_run_waiting_for_its_template_ends_at_its_deadline(
    start_operator: Any, own_frs: FlowRuns
) -> None:
    # The operator waits for the template before it creates any runner: the deadline bounds it.
    frs, ns = own_frs, own_frs.namespace
    start_operator("-n", ns, f"--default-image={IMAGE}")
    spec = {"flow": {"templateRef": {"name": "never-comes"}}, "activeDeadlineSeconds": 5}
    frs.apply("bounded", {**spec, "executor": {"type": "Local"}})
    frs.assert_waited_for_template_until_deadline("bounded", 5)
