"""`flowrun runner` under its per-run identity, on the control plane (no node needed).

The runner runs here as a host process holding a token of the FlowRun's own ServiceAccount,
bound to the per-run Role the operator creates (`runner_objects`): with exactly those rights it
reads its FlowRun, runs the flow, writes status and Events, and takes `parametersFrom` values from
its environment (where the kubelet puts `secretKeyRef` env). The API server's RBAC decides what
that identity may do: its own FlowRun's status, and nothing of another FlowRun or of Secrets.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import distributed
import pytest

from flowrun.cluster import base
from flowrun.cluster.kr8s_session import private_api
from flowrun.controller import kube
from flowrun.controller import runner_objects as objects
from flowrun.dev.waiting import wait_for
from flowrun.runs import companion
from flowrun.runs.secrets import MASK, Masker
from support.flowruns import FlowRuns, local_spec, task
from support.runners import finish, runner

pytestmark = [pytest.mark.controlplane]


def owner_of(frs: FlowRuns, name: str) -> base.Owner:
    obj = frs.get(name)
    assert obj is not None
    return base.Owner(
        "flowrun.dev/v1alpha1", "FlowRun", name, frs.namespace, obj["metadata"]["uid"]
    )


def grant(frs: FlowRuns, owner: base.Owner) -> None:
    """What the operator creates for a run: its ServiceAccount, Role and RoleBinding."""
    items = [objects.service_account(owner), objects.role(owner), objects.role_binding(owner)]
    frs.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )


def patch_status(kubeconfig: Path, namespace: str, name: str, patch: dict[str, Any]) -> int:
    """A JSON merge patch of `flowruns/<name>/status` as that identity; the HTTP status."""

    async def send() -> int:
        api = await private_api(kubeconfig=str(kubeconfig))
        try:
            await kube.merge_patch(api, namespace, name, patch, subresource="/status")
        except Exception as exc:
            code = kube.http_status(exc)
            if code is None:
                raise
            return code
        return 200

    return asyncio.run(send())


def test_the_runner_runs_its_flow_and_writes_status_and_events(
    own_frs: FlowRuns, sa_kubeconfig: Any, tmp_path: Path
) -> None:
    frs = own_frs
    spec = local_spec(
        [
            task("a", "add", 1, 2),
            {"name": "b", "fn": "builtins:len", "args": [{"parameter": "token"}]},
        ],
        executor={"type": "Local"},
        flow={"parameters": [{"name": "token", "required": True}]},
        parametersFrom=[{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
        returnTasks=["a", "b"],
    )
    frs.apply("own", spec)
    owner = owner_of(frs, "own")
    grant(frs, owner)
    kubeconfig = sa_kubeconfig(frs.namespace, objects.runner_name(owner))
    # The kubelet would set this from the Secret; the runner only ever sees the value.
    secret = {objects.SECRET_ENV.format(index=0): "s3cr3t-value-1234"}
    proc = runner(kubeconfig, owner, tmp_path, **secret)
    assert finish(proc, tmp_path, "own") == 0, (tmp_path / "runner-own.log").read_text()
    status = frs.status("own")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"a": 3, "b": len("s3cr3t-value-1234")}
    assert status["tasks"]["a"]["state"] == "Success"
    assert {"Running", "Succeeded"} <= frs.event_reasons("own")


def test_the_runner_identity_may_touch_only_its_own_flowrun(
    own_frs: FlowRuns, sa_kubeconfig: Any, kubectl: Any
) -> None:
    frs = own_frs
    frs.apply("mine", local_spec([task("a", "add", 1, 2)], executor={"type": "Local"}))
    frs.apply("other", local_spec([task("a", "add", 1, 2)], executor={"type": "Local"}))
    owner = owner_of(frs, "mine")
    grant(frs, owner)
    kubeconfig = sa_kubeconfig(frs.namespace, objects.runner_name(owner))
    ns = frs.namespace
    patch = {"status": {"phase": "Failed", "message": "written by another run"}}

    def as_runner(*args: str) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = kubectl(
            *args, "--kubeconfig", str(kubeconfig), check=False
        )
        return result

    # The patch the runner's status writer sends (kubectl patch would GET the object first).
    assert patch_status(kubeconfig, ns, "mine", patch) == 200
    assert patch_status(kubeconfig, ns, "other", patch) == 403
    assert frs.status("mine")["message"] == "written by another run"
    assert "phase" not in frs.status("other")
    for denied in (
        ("get", "flowrun", "other", "-n", ns),
        ("patch", "flowrun", "mine", "-n", ns, "--type=merge", "-p", '{"spec":{"cancel":true}}'),
        ("get", "secret", "anything", "-n", ns),
        ("get", "pods", "-n", ns),
        ("list", "flowruns", "-n", ns),
    ):
        out = as_runner(*denied) if denied[0] != "list" else as_runner("get", "flowruns", "-n", ns)
        assert out.returncode != 0, denied
        assert "forbidden" in out.stderr.lower(), (denied, out.stderr)
    assert as_runner("get", "flowrun", "mine", "-n", ns).returncode == 0


def test_the_runner_stops_on_spec_cancel(
    own_frs: FlowRuns, sa_kubeconfig: Any, tmp_path: Path
) -> None:
    frs = own_frs
    spec = local_spec(
        [{"name": "slow", "fn": "time:sleep", "args": [300]}], executor={"type": "Local"}
    )
    frs.apply("cancelme", spec)
    owner = owner_of(frs, "cancelme")
    grant(frs, owner)
    proc = runner(sa_kubeconfig(frs.namespace, objects.runner_name(owner)), owner, tmp_path)
    frs.wait_phase("cancelme", "Running", timeout=60)
    wait_for(
        lambda: frs.status("cancelme").get("tasks", {}).get("slow", {}).get("state") == "Running",
        timeout=60,
        what="the task to run",
    )
    frs.kubectl(
        "patch",
        "flowrun",
        "cancelme",
        "-n",
        frs.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"cancel":true}}',
    )
    assert finish(proc, tmp_path, "cancelme") == 0
    log = (tmp_path / "runner-cancelme.log").read_text()
    assert "refused" not in log, log  # its watch is allowed (resourceNames, by field selector)
    status = frs.status("cancelme")
    assert status["phase"] == "Cancelled", status
    assert status["tasks"]["slow"]["state"] == "Cancelled"


def test_a_big_flow_s_runner_writes_its_live_status_and_no_other_configmap(
    own_frs: FlowRuns, sa_kubeconfig: Any, kubectl: Any, tmp_path: Path
) -> None:
    """A big inline flow (flowrun.runs.companion): the operator creates the run's live-status
    ConfigMap with its identity; the runner may patch that one and nothing else."""
    frs = own_frs
    n = companion.BIG_FLOW_TASKS
    tasks = [task(f"t{i}", "add", i, 1) for i in range(n)]
    frs.apply("bigrun", local_spec(tasks, executor={"type": "Local"}))
    owner = owner_of(frs, "bigrun")
    grant(frs, owner)
    kubectl("create", "-f", "-", input=json.dumps(objects.live_status(owner)))
    kubeconfig = sa_kubeconfig(frs.namespace, objects.runner_name(owner))
    proc = runner(kubeconfig, owner, tmp_path)
    assert finish(proc, tmp_path, "bigrun") == 0
    log = (tmp_path / "runner-bigrun.log").read_text()
    assert "live status" not in log, log  # no companion write was refused
    status = frs.status("bigrun")
    assert status["phase"] == "Succeeded", status
    assert status["progress"] == f"{n}/{n}"
    name, ns = objects.status_name(owner), frs.namespace
    live = kubectl.json("get", "configmap", name, "-n", ns)["data"]
    assert (live["phase"], live["progress"]) == ("Succeeded", f"{n}/{n}")
    kubectl("create", "configmap", "other", "-n", ns, "--from-literal=a=b")
    for denied in (
        ("patch", "configmap", "other", "-n", ns, "--type=merge", "-p", '{"data":{"a":"c"}}'),
        ("create", "configmap", "mine", "-n", ns, "--from-literal=a=b"),
    ):
        out = kubectl(*denied, "--kubeconfig", str(kubeconfig), check=False)
        assert out.returncode != 0, denied
        assert "forbidden" in out.stderr.lower(), (denied, out.stderr)


def test_on_cluster_kubernetes_the_runner_waits_until_status_names_the_scheduler(
    own_frs: FlowRuns, sa_kubeconfig: Any, tmp_path: Path
) -> None:
    """The operator starts the runner beside the DaskCluster (their starts overlap) and writes
    `status.cluster.scheduler` when the scheduler is Ready: the runner runs nothing before."""
    frs = own_frs
    dask = {"cluster": "Kubernetes", "workers": 1}
    spec = local_spec(
        [{"name": "a", "fn": "operator:add", "args": [1, 2]}],
        executor={"type": "Dask", "dask": dask},
        returnTasks=["a"],
    )
    frs.apply("beside", spec)
    owner = owner_of(frs, "beside")
    grant(frs, owner)
    kubeconfig = sa_kubeconfig(frs.namespace, objects.runner_name(owner))
    log = tmp_path / "runner-beside.log"
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=":0"
    ) as cluster:
        address = cluster.scheduler_address
        proc = runner(kubeconfig, owner, tmp_path, **{objects.ENV_SCHEDULER: address})
        try:
            wait_for(lambda: "waiting for the operator" in log.read_text(), timeout=120,
                     what="the runner to wait for the scheduler")  # fmt: skip
            assert proc.poll() is None, log.read_text()
            assert frs.status("beside").get("phase") in (None, "Pending")
            # What the operator writes once the scheduler Pod is Ready.
            cluster_status = {"name": "fr-beside", "scheduler": address}
            frs.kubectl("patch", "flowrun", "beside", "-n", frs.namespace, "--type=merge",
                        "--subresource=status", "-p",
                        json.dumps({"status": {"cluster": cluster_status}}))  # fmt: skip
            assert finish(proc, tmp_path, "beside") == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    status = frs.status("beside")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"a": 3}


def test_the_runner_masks_secret_values_in_its_own_output(
    own_frs: FlowRuns, sa_kubeconfig: Any, tmp_path: Path
) -> None:
    """Tasks print, log and warn with a secret parameter, a thread of theirs dies of an error
    spelling it, one writes it to the descriptors (`os.write`, a subprocess), another task fails
    with it in its message: the runner's stdout and stderr (the container log, whose tail a
    crash puts into the run's message) carry `***` instead."""
    frs = own_frs
    secret = f'pa"ss\\w{uuid.uuid4().hex[:10]}'  # a quote and a backslash: repr spells it apart
    token = {"parameter": "token"}
    spec = local_spec(
        [
            {"name": "say", "fn": "builtins:print", "args": ["connecting with", token]},
            task("blab", "blab", token, upstream=["say"]),
            task("fds", "blab_fds", token, upstream=["blab"]),
            task("leak", "leak", token, upstream=["fds"]),
        ],
        executor={"type": "Local"},
        flow={"parameters": [{"name": "token", "required": True}]},
        parametersFrom=[{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
    )
    frs.apply("blabber", spec)
    owner = owner_of(frs, "blabber")
    grant(frs, owner)
    kubeconfig = sa_kubeconfig(frs.namespace, objects.runner_name(owner))
    proc = runner(kubeconfig, owner, tmp_path, **{objects.SECRET_ENV.format(index=0): secret})
    assert finish(proc, tmp_path, "blabber") == 0
    log = (tmp_path / "runner-blabber.log").read_text()
    status = frs.status("blabber")
    assert status["phase"] == "Failed", status
    assert status["tasks"]["blab"]["state"] == "Success", status
    assert Masker([secret]).text(log) == log, log  # no spelling or 8-character slice of it
    for masked in (
        f"connecting with {MASK}",  # print
        f"logging in with {MASK}",  # a logging handler
        f"token {MASK} is old",  # warnings
        f"ConnectionError: postgresql://app:{MASK}@db:5432 refused",  # a thread's traceback
        f"ValueError: could not log in with token {MASK}",  # a failed task's, logged
        f"os.write says {MASK}\n",  # the descriptors themselves
        f"os.write to stderr says {MASK}\n",
        f"sh says {MASK}\n",  # a subprocess
        f"buffer says {MASK}\n",
    ):
        assert masked in log, (masked, log)
