"""`flowrun dev up/status/down` from a shell: a second, independent plane in its own state dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowrun.dev import build
from support.processes import flowrun, pid_alive

pytestmark = pytest.mark.controlplane


def test_up_kubectl_down_from_a_shell(tmp_path: Path) -> None:
    build.ensure_built()
    state = tmp_path / "dev"
    env = {**os.environ, "FLOWRUN_DEV_DIR": str(state)}
    env.pop("KUBECONFIG", None)

    up = flowrun("dev", "up", env=env)
    assert up.returncode == 0, up.stderr
    pids = json.loads((state / "state.json").read_text())["pids"]
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    try:
        script = (
            f"{up.stdout}\n"
            "kubectl version -o json && "
            "kubectl auth can-i create pods --as=nobody; echo can-i-exit=$?"
        )
        shell = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert '"gitVersion": "v1.34.10"' in shell.stdout, shell.stderr
        assert shell.stdout.rstrip().endswith("no\ncan-i-exit=1"), shell.stdout

        again = flowrun("dev", "up", env=env)
        assert again.returncode == 0
        assert "already running" in again.stderr
        assert json.loads((state / "state.json").read_text())["pids"] == pids

        status = flowrun("dev", "status", env=env)
        assert status.returncode == 0
        assert "kube-apiserver" in status.stdout
        assert "NOT RUNNING" not in status.stdout
    finally:
        down = flowrun("dev", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert not state.exists()
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert flowrun("dev", "status", env=env).returncode == 1


def test_a_test_run_killed_hard_leaves_no_plane_behind(tmp_path: Path) -> None:
    """The fixture's plane is tied to its parent: SIGKILL of the parent ends etcd and the rest."""
    bins = build.ensure_built()
    script = (
        "import sys, json, time\n"
        "from pathlib import Path\n"
        "from flowrun.dev.controlplane import ControlPlane\n"
        f"p = ControlPlane(Path({str(tmp_path / 'cp')!r}), bin_dir=Path({str(bins)!r}),"
        " tie_to_parent=True)\n"
        "p.start()\n"
        "print(json.dumps(p.state.pids), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = json.loads(parent.stdout.readline())
    assert all(pid_alive(pid) for pid in pids.values())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in pids.values()):
        time.sleep(0.2)
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
