"""`flowrun dev up --node` from a shell, next to the session's node, and what `down` leaves.

The host side is compared before `up`, while the node runs and after `down`: processes, mounts,
cgroups, network namespaces, links, routes, iptables rules and the kernel flags the kubelet sets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowrun.dev import node, nodeconfig, nodehost
from flowrun.dev.waiting import wait_for
from support.processes import flowrun, pid_alive

pytestmark = [pytest.mark.controlplane, pytest.mark.node]

SYSCTLS = (*nodeconfig.KUBELET_SYSCTLS, "net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables")


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _no_counters(rules: str) -> list[str]:
    # Packet counters change by themselves; comments carry timestamps.
    return [
        line.split(" [")[0] if line.startswith(":") else line
        for line in rules.splitlines()
        if not line.startswith("#")
    ]


def host_snapshot() -> dict[str, object]:
    return {
        "links": _out("ip", "-o", "link", "show"),
        "routes": _out("ip", "route", "show", "table", "all"),
        "routes6": _out("ip", "-6", "route", "show", "table", "all"),
        "iptables": _no_counters(_out("iptables-save")),
        "ip6tables": _no_counters(_out("ip6tables-save")),
        "mounts": sorted(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ),
        "netns": sorted(os.listdir("/run/netns")) if Path("/run/netns").is_dir() else [],
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/flowrun-*")),
        "sysctls": {key: Path("/proc/sys", key).read_text() for key in SYSCTLS},
    }


@pytest.fixture
def short_state_dir() -> Iterator[Path]:
    # Unix sockets live under it: keep it short.
    with tempfile.TemporaryDirectory(prefix="fr-") as directory:
        yield Path(directory) / "dev"


def test_up_node_runs_kubectl_run_and_down_leaves_the_host_as_found(dev_node, short_state_dir):
    env = {**os.environ, "FLOWRUN_DEV_DIR": str(short_state_dir)}
    env.pop("KUBECONFIG", None)
    before = host_snapshot()
    up = flowrun("dev", "up", "--node", env=env)
    assert up.returncode == 0, up.stderr
    try:
        recorded = json.loads((short_state_dir / "node.json").read_text())
        pids = json.loads((short_state_dir / "state.json").read_text())["pids"]
        assert {"kubelet", "containerd", "kube-proxy", "coredns", "kube-scheduler"} <= set(pids)
        script = (
            f"{up.stdout}\n"
            f"kubectl run t --image={dev_node.image} --restart=Never -- python -c 'print(42)' && "
            "kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/t --timeout=120s && "
            "kubectl logs t"
        )
        shell = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert shell.returncode == 0, shell.stdout + shell.stderr
        assert shell.stdout.rstrip().endswith("\n42"), shell.stdout
        during = host_snapshot()
        assert during["sysctls"] == before["sysctls"]
        assert during["links"] == before["links"]
        assert during["routes"] == before["routes"]
        assert during["iptables"] == before["iptables"]
    finally:
        down = flowrun("dev", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert not short_state_dir.exists()
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    after = host_snapshot()
    assert not any(recorded["cgroup"] in c for c in after["cgroups"])  # type: ignore[attr-defined]
    assert recorded["netns"] not in after["netns"]  # type: ignore[operator]
    assert after == before


def test_a_node_whose_test_run_was_killed_is_swept_by_the_next_start(dev_node, short_state_dir):
    """Tied to its parent, the node's processes die with a SIGKILLed test run; its running
    containers (not children of anything recorded) and its namespace and cgroups are then found
    through the registry and removed by the next node's start (here: `sweep_stale`)."""
    before = host_snapshot()
    script = (
        "import json, subprocess, sys, time\n"
        "from pathlib import Path\n"
        "from flowrun.dev.node import Node\n"
        f"n = Node(Path({str(short_state_dir)!r}), bin_dir=Path({str(dev_node.node.bin_dir)!r}),"
        f" images=({str(dev_node.node.images[0])!r},), tie_to_parent=True)\n"
        "n.start()\n"
        f"pod = ['run', 'p', '--image={dev_node.image}', '--restart=Never', '--',"
        " 'python', '-c', 'import time; time.sleep(600)']\n"
        "kubectl = [str(n.bin_dir / 'kubectl'), f'--kubeconfig={n.kubeconfig}']\n"
        "subprocess.run([*kubectl, *pod], check=True, capture_output=True)\n"
        "subprocess.run([*kubectl, 'wait', '--for=condition=Ready', 'pod/p', '--timeout=120s'],"
        " check=True, capture_output=True)\n"
        "print(json.dumps([n.state.cgroup, n.state.netns, n.plane.state.pids]), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    cgroup, netns, pids = json.loads(parent.stdout.readline())
    containers = nodehost.cgroup_pids(cgroup) - set(pids.values())
    assert containers, "the Pod's processes run in the node's cgroup"
    parent.kill()
    parent.wait()

    def alive() -> list[str]:
        return [name for name, pid in pids.items() if pid_alive(pid)]

    try:
        wait_for(lambda: not alive(), timeout=60, what="pdeathsig")
    except TimeoutError:
        raise AssertionError(f"alive 60 s after their parent was killed: {alive()}") from None
    assert any(pid_alive(p) for p in containers), "containers outlive a killed kubelet"
    assert netns in os.listdir("/run/netns")

    assert node.sweep_stale() != []
    assert not any(pid_alive(p) for p in containers)
    assert host_snapshot() == before
