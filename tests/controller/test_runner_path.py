"""The operator's product path on the control plane: no flow runs in the operator.

Without --allow-in-process, every FlowRun (Local and Synchronous executors too) gets a runner:
a Job from the run's image, with its own ServiceAccount, Role and RoleBinding, all owned by the
FlowRun. No kubelet runs here, so the runner never starts: what is shown is what the operator
creates, that it runs nothing itself, and that cancel, deadline and deletion leave nothing
behind. tests/node runs the same runners on real Pods.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns, local_spec, task

pytestmark = [pytest.mark.controlplane]

IMAGE = "registry.invalid/flows:1"
KINDS = ("jobs", "serviceaccounts", "roles", "rolebindings")


def runner_objects(frs: FlowRuns, uid: str) -> dict[str, list[str]]:
    """The objects owned by the FlowRun with `uid`, by kind."""
    found: dict[str, list[str]] = {}
    for kind in KINDS:
        items = frs.kubectl.json("get", kind, "-n", frs.namespace)["items"]
        owned = [
            i["metadata"]["name"]
            for i in items
            if any(r["uid"] == uid for r in i["metadata"].get("ownerReferences", []))
        ]
        if owned:
            found[kind] = owned
    return found


def uid_of(frs: FlowRuns, name: str) -> str:
    obj = frs.get(name)
    assert obj is not None
    return str(obj["metadata"]["uid"])


def test_every_executor_gets_a_runner_and_nothing_runs_in_the_operator(
    start_operator: Any, own_frs: FlowRuns
) -> None:
    frs = own_frs
    start_operator("-n", frs.namespace, f"--default-image={IMAGE}")
    executors = {
        "local-executor": {"type": "Local"},
        "sync-executor": {"type": "Synchronous"},
        "local-cluster": {"type": "Dask", "dask": {"cluster": "Local"}},
    }
    for name, executor in executors.items():
        frs.apply(name, local_spec([task("a", "mark", name)], executor=executor))
    for name in executors:
        uid = uid_of(frs, name)
        objects = wait_for(
            lambda uid=uid: (
                len(runner_objects(frs, uid)) == len(KINDS) and runner_objects(frs, uid)
            ),
            timeout=60,
            what=f"the runner objects of {name}",
        )
        assert all(len(names) == 1 for names in objects.values()), objects
        job = frs.kubectl.json("get", "job", objects["jobs"][0], "-n", frs.namespace)
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == objects["serviceaccounts"][0]
        assert pod["containers"][0]["image"] == IMAGE
        assert pod["containers"][0]["command"] == ["flowrun", "runner"]
        role = frs.kubectl.json("get", "role", objects["roles"][0], "-n", frs.namespace)
        # Its own FlowRun, its run's live-status ConfigMap (only created for a big flow) and
        # its run's FlowTemplate copy (only taken for a templateRef).
        prefix = objects["serviceaccounts"][0].removesuffix("-runner")
        named = {r.get("resourceNames", [None])[0] for r in role["rules"]}
        assert named == {name, f"{prefix}-status", f"{prefix}-flow", None}
    for name in executors:
        status = frs.status(name)
        assert status.get("phase") == "Pending", status
        assert "tasks" not in status
        assert frs.runs(name) == 0  # the task never ran here


def test_cancel_and_deletion_leave_no_runner_behind(start_operator: Any, own_frs: FlowRuns) -> None:
    frs = own_frs
    # The runner never starts here, so a cancel is ended by the operator after its grace.
    start_operator("-n", frs.namespace, f"--default-image={IMAGE}", "--cancel-grace=1")
    spec = local_spec([task("a", "add", 1, 2)], executor={"type": "Local"})
    for name in ("cancelled", "deleted", "deadline"):
        extra = {"activeDeadlineSeconds": 3} if name == "deadline" else {}
        frs.apply(name, {**spec, **extra})
    uids = {name: uid_of(frs, name) for name in ("cancelled", "deleted", "deadline")}
    for name, uid in uids.items():
        wait_for(lambda uid=uid: "jobs" in runner_objects(frs, uid), timeout=60, what=name)
    frs.kubectl(
        "patch",
        "flowrun",
        "cancelled",
        "-n",
        frs.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"cancel":true}}',
    )
    frs.kubectl("delete", "flowrun", "deleted", "-n", frs.namespace, "--wait=false")
    cancelled = frs.wait_phase("cancelled", timeout=90)
    assert cancelled["phase"] == "Cancelled", cancelled
    deadline = frs.wait_phase("deadline", timeout=90)
    assert deadline["phase"] == "Failed", deadline
    assert "activeDeadlineSeconds (3s)" in deadline["message"]
    wait_for(lambda: frs.get("deleted") is None, timeout=90, what="the deleted FlowRun to go")
    for name, uid in uids.items():
        wait_for(lambda uid=uid: not runner_objects(frs, uid), timeout=60, what=f"{name} clean")
    assert {"CancelRequested"} <= frs.event_reasons("cancelled")


def test_a_secret_key_ref_cannot_name_another_namespace(own_frs: FlowRuns) -> None:
    """The only route to a Secret is the runner Pod's secretKeyRef env, which the kubelet resolves
    in the Pod's own namespace; the FlowRun cannot even say another one."""
    frs = own_frs
    base = local_spec([task("a", "add", 1, 2)], executor={"type": "Local"})
    for ref in (
        {"name": "creds", "key": "token", "namespace": "kube-system"},
        {"name": "kube-system/creds", "key": "token"},
        {"name": "../kube-system/secrets/creds", "key": "token"},
    ):
        spec = {**base, "parametersFrom": [{"name": "token", "secretKeyRef": ref}]}
        body = {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": "FlowRun",
            "metadata": {"name": "elsewhere", "namespace": frs.namespace},
            "spec": spec,
        }
        out = frs.kubectl("apply", "-f", "-", input=json.dumps(body), check=False)
        assert out.returncode != 0, ref
        assert "secretKeyRef" in out.stderr, out.stderr
    assert frs.get("elsewhere") is None
