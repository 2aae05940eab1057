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

from flowrun.dev import nodeconfig

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


def flowrun(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowrun.cli", *args],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


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
        node = json.loads((short_state_dir / "node.json").read_text())
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
    assert not any(node["cgroup"] in c for c in after["cgroups"])  # type: ignore[attr-defined]
    assert node["netns"] not in after["netns"]  # type: ignore[operator]
    assert after == before
