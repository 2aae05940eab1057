"""Pods really run on the dev node: a kubelet, containerd, CNI, kube-proxy and CoreDNS decide these
outcomes (logs, exec, Service routing by ClusterIP and DNS name, OOM kills, garbage collection,
missing images); a control plane without a node leaves every one of them Pending forever.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrun.dev.waiting import wait_for

pytestmark = [pytest.mark.controlplane, pytest.mark.node]


def pod(name: str, image: str, args: list[str], **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "args": args}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": spec.pop("labels", {"app": name})},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            **spec,
        },
    }


def apply(dev_node, namespace: str, obj: dict[str, Any]) -> None:
    dev_node.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def get_pod(dev_node, namespace: str, name: str) -> dict[str, Any]:
    return dev_node.kubectl.json("get", "pod", name, "-n", namespace)  # type: ignore[no-any-return]


def phase(dev_node, namespace: str, name: str) -> str:
    return str(get_pod(dev_node, namespace, name).get("status", {}).get("phase", ""))


def wait_phase(dev_node, namespace: str, name: str, *phases: str, timeout: float = 120) -> str:
    return str(
        wait_for(
            lambda: (p := phase(dev_node, namespace, name)) in phases and p,
            timeout=timeout,
            what=f"pod {name} to reach {phases}",
        )
    )


def test_a_pod_runs_and_kubectl_logs_shows_its_output(dev_node, node_namespace):
    code = "import socket; print('hello from', socket.gethostname())"
    apply(dev_node, node_namespace, pod("hello", dev_node.image, ["python", "-c", code]))
    assert wait_phase(dev_node, node_namespace, "hello", "Succeeded", "Failed") == "Succeeded"
    logs = dev_node.kubectl("logs", "hello", "-n", node_namespace).stdout
    assert logs.strip() == "hello from hello"


def test_kubectl_exec_runs_a_command_in_a_running_container(dev_node, node_namespace):
    sleeper = ["python", "-c", "import time; time.sleep(600)"]
    apply(dev_node, node_namespace, pod("sleeper", dev_node.image, sleeper))
    wait_phase(dev_node, node_namespace, "sleeper", "Running")
    out = dev_node.kubectl(
        "exec", "sleeper", "-n", node_namespace, "--", "python", "-c", "print(6 * 7)"
    ).stdout
    assert out.strip() == "42"


def test_a_service_routes_by_cluster_ip_and_dns_name_from_another_pod(dev_node, node_namespace):
    server = ["python", "-m", "http.server", "8000"]
    apply(dev_node, node_namespace, pod("web", dev_node.image, server, labels={"app": "web"}))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]},
    }
    apply(dev_node, node_namespace, service)
    cluster_ip = dev_node.kubectl.json("get", "service", "web", "-n", node_namespace)["spec"][
        "clusterIP"
    ]
    fqdn = f"web.{node_namespace}.svc.cluster.local"
    # Retries until the endpoints are programmed; prints what each address answered.
    client = f"""
import socket, time, urllib.request
def fetch(host):
    for _ in range(120):
        try:
            return urllib.request.urlopen(f"http://{{host}}:80/", timeout=2).status
        except OSError:
            time.sleep(0.5)
    return "unreachable"
print("resolved", socket.gethostbyname("{fqdn}"))
print("ip", fetch("{cluster_ip}"))
print("dns", fetch("{fqdn}"))
print("short", fetch("web"))
"""
    apply(dev_node, node_namespace, pod("client", dev_node.image, ["python", "-c", client]))
    wait_phase(dev_node, node_namespace, "client", "Succeeded", "Failed", timeout=180)
    logs = dev_node.kubectl("logs", "client", "-n", node_namespace).stdout.split("\n")
    assert logs[:4] == [f"resolved {cluster_ip}", "ip 200", "dns 200", "short 200"], logs


def test_a_container_over_its_memory_limit_is_oom_killed(dev_node, node_namespace):
    hog = ["python", "-c", "blocks = [bytearray(10 << 20) for _ in range(30)]; print('survived')"]
    limits = {"resources": {"limits": {"memory": "48Mi"}, "requests": {"memory": "48Mi"}}}
    apply(dev_node, node_namespace, pod("hog", dev_node.image, hog, container=limits))
    assert wait_phase(dev_node, node_namespace, "hog", "Succeeded", "Failed") == "Failed"
    [status] = get_pod(dev_node, node_namespace, "hog")["status"]["containerStatuses"]
    terminated = status["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)


def test_deleting_an_owner_garbage_collects_its_pods(dev_node, node_namespace):
    sleeper = ["python", "-c", "import time; time.sleep(600)"]
    template = pod("x", dev_node.image, sleeper, labels={"app": "owned"})
    template["spec"]["restartPolicy"] = "Always"
    replicaset = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "owner"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "owned"}},
            "template": {"metadata": template["metadata"], "spec": template["spec"]},
        },
    }
    apply(dev_node, node_namespace, replicaset)

    def running() -> list[str]:
        items = dev_node.kubectl.json("get", "pods", "-n", node_namespace, "-l", "app=owned")
        return [
            p["metadata"]["name"] for p in items["items"] if p["status"].get("phase") == "Running"
        ]

    assert len(wait_for(lambda: len(running()) == 2 and running(), timeout=120)) == 2
    dev_node.kubectl("delete", "replicaset", "owner", "-n", node_namespace, "--wait=false")

    def remaining() -> list[Any]:
        items = dev_node.kubectl.json("get", "pods", "-n", node_namespace, "-l", "app=owned")
        return list(items["items"])

    wait_for(lambda: not remaining(), timeout=120, what="the garbage collector and the kubelet")


@pytest.mark.parametrize(
    ("policy", "reasons"),
    [("Never", {"ErrImageNeverPull"}), ("IfNotPresent", {"ErrImagePull", "ImagePullBackOff"})],
)
def test_an_image_that_is_not_on_the_node_is_reported_not_pulled(
    dev_node, node_namespace, policy, reasons
):
    name = f"missing-{policy.lower()}"
    spec = {"container": {"imagePullPolicy": policy}}
    image = "registry.invalid/flowrun/does-not-exist:1.0"
    apply(dev_node, node_namespace, pod(name, image, ["true"], **spec))

    def waiting_reason() -> str:
        statuses = get_pod(dev_node, node_namespace, name)["status"].get("containerStatuses", [])
        return str(statuses[0]["state"].get("waiting", {}).get("reason", "")) if statuses else ""

    assert wait_for(lambda: (r := waiting_reason()) in reasons and r, timeout=120) in reasons


def test_the_image_runs_a_dask_scheduler_and_worker_that_compute_in_pods(dev_node, node_namespace):
    """The project's image is the worker image: the dask-scheduler/dask-worker commands that
    dask-kubernetes runs work in it; a worker reaches the scheduler by its Service's DNS name."""
    scheduler = pod("sched", dev_node.image, ["dask-scheduler"], labels={"app": "sched"})
    apply(dev_node, node_namespace, scheduler)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "sched"},
        "spec": {"selector": {"app": "sched"}, "ports": [{"port": 8786}]},
    }
    apply(dev_node, node_namespace, service)
    address = f"tcp://sched.{node_namespace}.svc.cluster.local:8786"
    worker = pod("worker", dev_node.image, ["dask-worker", address, "--nthreads=1"])
    apply(dev_node, node_namespace, worker)
    client = f"""
from distributed import Client
import socket
with Client("{address}", timeout=60) as c:
    c.wait_for_workers(1, timeout=120)
    print(c.submit(lambda x: (x * x, socket.gethostname()), 7).result())
"""
    apply(dev_node, node_namespace, pod("client", dev_node.image, ["python", "-c", client]))
    final = wait_phase(dev_node, node_namespace, "client", "Succeeded", "Failed", timeout=240)
    logs = dev_node.kubectl("logs", "client", "-n", node_namespace).stdout
    assert final == "Succeeded", logs
    # distributed may log a closing-time warning after the result (stderr shares the log).
    assert "(49, 'worker')" in logs.strip().splitlines(), logs


def test_a_pod_reaches_the_api_server_as_its_service_account(dev_node, node_namespace):
    """In-cluster config works as in any cluster: the `kubernetes` Service routes to the API
    server, the Pod's token authenticates it, and RBAC applies to it (the default account may
    read /version but not list Pods)."""
    code = f"""
from kubernetes import client, config
config.load_incluster_config()
print(client.VersionApi().get_code().git_version)
try:
    client.CoreV1Api().list_namespaced_pod("{node_namespace}")
except client.ApiException as denied:
    print(denied.status)
"""
    apply(dev_node, node_namespace, pod("incluster", dev_node.image, ["python", "-c", code]))
    final = wait_phase(dev_node, node_namespace, "incluster", "Succeeded", "Failed")
    logs = dev_node.kubectl("logs", "incluster", "-n", node_namespace).stdout
    assert final == "Succeeded", logs
    assert logs.split() == ["v1.34.10", "403"]
