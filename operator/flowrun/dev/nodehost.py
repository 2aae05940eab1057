"""What the dev node changes on the host, and how each change is undone.

The host gets exactly: one network namespace (`/run/netns/flowrun-<id>`), one cgroup per v1
hierarchy (`/flowrun-<id>`), a registry file naming the node's owner, and libcni's cache files
named after the node's network. Everything else lives inside those. `teardown` removes them; the
sweep uses the registry to find nodes whose owner died (a test run killed by a timeout) and tears
them down.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from flowrun.dev.nodeconfig import NODE_IP, SERVICE_CIDR

CGROUP_FS = Path("/sys/fs/cgroup")
REGISTRY = Path("/run/flowrun-nodes")
CNI_RESULTS = Path("/var/lib/cni/results")
_CONTAINERD_RUN = Path("/run/containerd")
_CONTAINERD_RUN_DIRS = (
    _CONTAINERD_RUN / "s", _CONTAINERD_RUN / "fifo", _CONTAINERD_RUN / "runc" / "k8s.io",
    _CONTAINERD_RUN / "runc", _CONTAINERD_RUN,
)  # fmt: skip


class HostError(RuntimeError):
    """A host-side step failed; the message carries the command and its error."""


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HostError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")


def create_netns(name: str) -> None:
    """The node's namespace: a node IP on an empty bridge (no `dummy` module here), no default
    route, and a route for the Service range so that processes in it hit kube-proxy's rules."""
    _run("ip", "netns", "add", name)
    for argv in (
        ("link", "set", "lo", "up"),
        ("link", "add", "flowrun0", "type", "bridge"),
        ("addr", "add", f"{NODE_IP}/32", "dev", "flowrun0"),
        ("link", "set", "flowrun0", "up"),
        ("route", "add", SERVICE_CIDR, "dev", "flowrun0"),
    ):
        _run("ip", "-n", name, *argv)
    # Pod -> ClusterIP -> Pod on one bridge needs bridged traffic to pass iptables; per namespace.
    _run("nsenter", f"--net=/run/netns/{name}", "--", "sh", "-c",
         "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables")  # fmt: skip


def _hierarchies() -> list[Path]:
    return sorted(p for p in CGROUP_FS.iterdir() if p.is_dir() and p.name != "unified")


def create_cgroups(name: str) -> None:
    """`/<name>/runtime` in each v1 hierarchy: the kubelet's cgroupRoot, the node's processes."""
    for hierarchy in _hierarchies():
        for path in (hierarchy / name, hierarchy / name / "runtime"):
            path.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                # A fresh cpuset cgroup has no CPUs or memory nodes; tasks cannot join it so.
                for key in ("cpuset.cpus", "cpuset.mems"):
                    (path / key).write_text((path.parent / key).read_text())


def join_cgroup(name: str, pid: int) -> None:
    for hierarchy in _hierarchies():
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            (hierarchy / name / "runtime" / "cgroup.procs").write_text(f"{pid}\n")


def _cgroup_dirs(name: str) -> Iterator[Path]:
    """Every directory of the node's cgroup tree, deepest first."""
    for hierarchy in sorted(CGROUP_FS.iterdir()):
        top = hierarchy / name
        if top.is_dir():
            yield from sorted(
                (d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)
            )
            yield top


def cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for directory in _cgroup_dirs(name):
        with contextlib.suppress(FileNotFoundError):
            pids |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
    return pids


def _kill_cgroup(name: str, timeout: float = 30.0) -> None:
    # Containers, their shims and pause processes are not children of anything we recorded.
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids(name)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    if pids:
        raise HostError(f"processes {sorted(pids)} in cgroup /{name} did not die")


def _shim_leftovers(node_dir: Path) -> list[Path]:
    """Host files of the node's killed shims: their sockets and libcni's loopback results.

    containerd 1.6 names a shim's socket /run/containerd/s/<sha256(address/namespace/id)>.
    """
    address = node_dir / "containerd" / "containerd.sock"
    tasks = node_dir / "containerd" / "state" / "io.containerd.runtime.v2.task" / "k8s.io"
    ids = [d.name for d in tasks.iterdir()] if tasks.is_dir() else []
    sockets = [
        _CONTAINERD_RUN / "s" / hashlib.sha256(f"{address}/k8s.io/{i}".encode()).hexdigest()
        for i in ids
    ]
    return sockets + [CNI_RESULTS / f"cni-loopback-{i}-lo" for i in ids]


def teardown(netns: str, cgroup: str, node_dir: Path) -> None:
    """Remove what a node left: processes in its cgroup, the cgroup tree, the namespace, caches."""
    _kill_cgroup(cgroup)
    for leftover in _shim_leftovers(node_dir):
        leftover.unlink(missing_ok=True)
    for directory in _cgroup_dirs(cgroup):
        with contextlib.suppress(FileNotFoundError):
            directory.rmdir()
    if Path("/run/netns", netns).exists():
        _run("ip", "netns", "del", netns)
    if CNI_RESULTS.is_dir():
        for cached in CNI_RESULTS.glob(f"{netns}-*"):
            cached.unlink(missing_ok=True)
    # Host directories containerd and libcni create on first use; another node may still use them,
    # so only empty ones go.
    for directory in (CNI_RESULTS, CNI_RESULTS.parent, *_CONTAINERD_RUN_DIRS):
        with contextlib.suppress(OSError):
            directory.rmdir()


def register(node_id: str, state_dir: Path, *, netns: str, cgroup: str) -> None:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    entry = {"state_dir": str(state_dir), "owner": os.getpid(), "netns": netns, "cgroup": cgroup}
    (REGISTRY / node_id).write_text(json.dumps(entry) + "\n")


def unregister(node_id: str) -> None:
    (REGISTRY / node_id).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        REGISTRY.rmdir()


def registered() -> dict[str, dict[str, object]]:
    if not REGISTRY.is_dir():
        return {}
    entries = {}
    for path in REGISTRY.iterdir():
        with contextlib.suppress(ValueError, OSError):
            entries[path.name] = json.loads(path.read_text())
    return entries
