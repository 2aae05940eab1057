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

from flowrun.dev import build, hostpkgs, image
from flowrun.dev.controlplane import ControlPlane, ControlPlaneError, default_state_dir
from flowrun.dev.node import Node

HELP = "a real local Kubernetes (control plane, optionally a node): build, image, up, down, status"


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
    i = sub.add_parser("image", help="build the project's image from its Dockerfile (no Docker)")
    i.add_argument("--force", action="store_true", help="rebuild even if the image is cached")
    up = sub.add_parser("up", help="start the control plane (idempotent); prints shell exports")
    up.add_argument(
        "--node",
        action="store_true",
        help="also run a node (kubelet, containerd, kube-proxy, CoreDNS, scheduler) so Pods run; "
        "needs root",
    )
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


def _up(state_dir: Path, *, node: bool) -> int:
    existing = ControlPlane.load(state_dir)
    running_node = Node.load(state_dir)
    if existing is not None and existing.is_running():
        if node and running_node is None:
            _err("A control plane without a node runs here: `flowrun dev down` first, then "
                 "`flowrun dev up --node`")  # fmt: skip
            return 1
        _err(f"The control plane is already running at {existing.server}")
        print(_exports(existing), end="")
        return 0
    if running_node is not None:
        _err("Found a stale node; cleaning it up first")
        running_node.stop()
    elif existing is not None:
        _err("Found a stale control plane; cleaning it up first")
        existing.stop()
    if node:
        return _up_node(state_dir)
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


def _up_node(state_dir: Path) -> int:
    try:
        bins = build.ensure_built()
        built = image.ensure_image()
    except (build.BuildError, hostpkgs.HostPackagesError, image.ImageError) as err:
        _err(f"error: {err}")
        return 1
    started = time.monotonic()
    _err("Starting the control plane and a node (containerd, kubelet, kube-proxy, CoreDNS) ...")
    node = Node(state_dir, bin_dir=bins, images=(built.archive,))
    try:
        node.start()
    except ControlPlaneError as err:
        _err(f"error: the node did not start: {err}")
        return 1
    _err(f"Node ready at {node.plane.server} in {time.monotonic() - started:.1f} s")
    _err(f"Image for Pods: {built.name}")
    print(_exports(node.plane), end="")
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
    if action == "image":
        try:
            built = image.ensure_image(force=args.force)
        except (build.BuildError, hostpkgs.HostPackagesError, image.ImageError) as err:
            _err(f"error: {err}")
            return 1
        _err(f"archive: {built.archive}")
        print(built.name)
        return 0
    if action == "up":
        return _up(state_dir, node=args.node)
    if action == "env":
        plane = ControlPlane.load(state_dir)
        if plane is None or not plane.is_running():
            _err("No control plane is running (start one with `flowrun dev up`).")
            return 1
        print(_exports(plane), end="")
        return 0
    if action == "down":
        node = Node.load(state_dir)
        if node is not None:
            node.stop()
            _err("Node and control plane stopped.")
            return 0
        plane = ControlPlane.load(state_dir)
        if plane is None:
            _err("No control plane to stop.")
            return 0
        plane.stop()
        _err("Control plane stopped.")
        return 0
    return _status(state_dir)
