"""The Debian packages the dev node runs on, installed when missing (and saying so).

containerd, runc and the CNI plugins run the Pods; iptables/nftables and conntrack are what
kube-proxy and the CNI plugins drive; mmdebstrap builds the local base image; gcc builds the pause
process. They come from the distribution rather than the Go build because Debian ships them ready.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PACKAGES = (
    "containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "nftables",
    "mmdebstrap", "gcc", "libc6-dev",
)  # fmt: skip


class HostPackagesError(RuntimeError):
    """A package is missing and cannot be installed here; the message says what to run."""


def missing(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages of `packages` that dpkg does not list as installed."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    absent = []
    for name in packages:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0 or "install ok installed" not in out.stdout:
            absent.append(name)
    return absent


def ensure_installed(packages: tuple[str, ...] = PACKAGES) -> None:
    """Install what is missing with apt-get (as root), after an `apt-get update`."""
    absent = missing(packages)
    if not absent:
        return
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *absent]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise HostPackagesError(
            f"the dev node needs these Debian packages: {' '.join(absent)}; install them as root "
            f"with `apt-get update && {' '.join(command)}` and run the command again"
        )
    print(f"Installing Debian packages for the dev node: {' '.join(absent)}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], command):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HostPackagesError(
                f"`{' '.join(argv)}` failed ({result.returncode}):\n{result.stdout[-2000:]}"
                f"{result.stderr[-2000:]}"
            )
