"""`flowrun dev build|up|down|status|env`.

Human-readable progress goes to stderr; `up` and `env` print only shell exports on stdout, so
`eval "$(flowrun dev up)"` puts kubectl and helm on PATH and points KUBECONFIG at the plane.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane, ControlPlaneError, default_state_dir

HELP = "a real local Kubernetes control plane: build, up, down, status"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the running plane keeps its state (default: $FLOWRUN_DEV_DIR or "
        "~/.local/state/flowrun/dev)",
    )
    sub = parser.add_subparsers(dest="dev_command", metavar="ACTION", required=True)
    b = sub.add_parser(
        "build", help="build etcd, kube-apiserver, controller-manager, kubectl, helm"
    )
    b.add_argument("--force", action="store_true", help="rebuild even if the binaries exist")
    sub.add_parser("up", help="start the control plane (idempotent); prints shell exports")
    sub.add_parser("down", help="stop the processes `up` started and remove the state")
    sub.add_parser("status", help="show what runs where")
    sub.add_parser("env", help="print the shell exports for the running plane")


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _exports(plane: ControlPlane) -> str:
    return (
        f"export KUBECONFIG={shlex.quote(str(plane.kubeconfig))}\n"
        f'export PATH={shlex.quote(str(plane.bin_dir))}:"$PATH"\n'
    )


def _up(state_dir: Path) -> int:
    existing = ControlPlane.load(state_dir)
    if existing is not None and existing.is_running():
        _err(f"The control plane is already running at {existing.server}")
        print(_exports(existing), end="")
        return 0
    if existing is not None:
        _err("Found a stale control plane; cleaning it up first")
        existing.stop()
    bins = build.ensure_built()
    plane = ControlPlane(state_dir, bin_dir=bins)
    started = time.monotonic()
    _err("Starting etcd, kube-apiserver and kube-controller-manager on loopback ...")
    try:
        plane.start()
    except ControlPlaneError as err:
        _err(f"error: the control plane did not start: {err}")
        return 1
    _err(f"Control plane ready at {plane.server} in {time.monotonic() - started:.1f} s")
    _err('Use it from this shell with: eval "$(flowrun dev env)"')
    print(_exports(plane), end="")
    return 0


def _status(state_dir: Path) -> int:
    plane = ControlPlane.load(state_dir)
    if plane is None:
        _err("No control plane is running (start one with `flowrun dev up`).")
        return 1
    print(f"server:     {plane.server}")
    print(f"kubeconfig: {plane.kubeconfig}")
    print(f"binaries:   {plane.bin_dir}")
    print(f"state:      {plane.state_dir}")
    for name, (pid, alive) in plane.processes().items():
        print(f"{name:<24} pid {pid:<8} {'running' if alive else 'NOT RUNNING'}")
    return 0 if plane.is_running() else 1


def main(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir or default_state_dir()
    action: str = args.dev_command
    if action == "build":
        try:
            target = build.ensure_built(force=args.force)
        except build.BuildError as err:
            _err(f"error: {err}")
            return 1
        for line in build.describe(target):
            _err(line)
        return 0
    if action == "up":
        return _up(state_dir)
    if action == "env":
        plane = ControlPlane.load(state_dir)
        if plane is None or not plane.is_running():
            _err("No control plane is running (start one with `flowrun dev up`).")
            return 1
        print(_exports(plane), end="")
        return 0
    if action == "down":
        plane = ControlPlane.load(state_dir)
        if plane is None:
            _err("No control plane to stop.")
            return 0
        plane.stop()
        _err("Control plane stopped.")
        return 0
    return _status(state_dir)
