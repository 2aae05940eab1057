"""A real one-node Kubernetes on this machine, without Docker: `flowrun dev up --node`.

The whole stack runs in one network namespace made for it, with no default route, so Pods and
Services exist only there and nothing can leave the machine. The control plane is the same as the
API-only one, started inside that namespace; the host reaches it through a loopback forwarder.
containerd, the kubelet and kube-proxy share a private mount namespace (held by a `sleep` process)
in which regular files are bind-mounted over the kernel flags the kubelet writes, so the host's
sysctls never change. Every process is recorded by PID and put into the node's own cgroup, so
`stop` (and the sweep of a node whose owner was killed) finds exactly what `start` made.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from flowrun.dev import hostpkgs, nodeconfig, nodehost, oci
from flowrun.dev.controlplane import ControlPlane, ControlPlaneError
from flowrun.dev.nodeconfig import NODE_IP, NODE_NAME, SANDBOX_IMAGE, NodePaths

_SOCKET_LIMIT = 100


class NodeError(ControlPlaneError):
    """The node did not come up; the message names the piece and carries its log tail."""


@dataclass
class NodeState:
    id: str
    netns: str
    cgroup: str
    state_dir: str


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        raise NodeError(f"`{name}` is not installed; run `flowrun dev build` as root to install it")
    return path


class Node:
    """A control plane plus a kubelet node, rooted in `state_dir`.

    Example:
        node = Node(Path("node-state"), bin_dir=build.ensure_built(), images=[archive])
        node.start()   # node.plane.kubeconfig now reaches a cluster that runs Pods
        node.stop()
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        bin_dir: Path,
        images: tuple[Path, ...] = (),
        tie_to_parent: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.bin_dir = bin_dir
        self.images = images
        node_id = secrets.token_hex(4)
        self.state = NodeState(
            id=node_id, netns=f"flowrun-{node_id}", cgroup=f"flowrun-{node_id}",
            state_dir=str(state_dir),
        )  # fmt: skip
        self.paths = NodePaths(state_dir / "node")
        self.plane = ControlPlane(
            state_dir, bin_dir=bin_dir, tie_to_parent=tie_to_parent, netns=self.state.netns
        )

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @classmethod
    def load(cls, state_dir: Path) -> Node | None:
        path = state_dir / "node.json"
        if not path.exists():
            return None
        state = NodeState(**json.loads(path.read_text()))
        plane = ControlPlane.load(state_dir)
        node = cls(state_dir, bin_dir=plane.bin_dir if plane else Path())
        node.state = state
        if plane is not None:
            node.plane = plane
        return node

    def is_running(self) -> bool:
        return self.plane.is_running()

    # --- start -------------------------------------------------------------------------------

    def start(self, *, timeout: float = 180.0) -> None:
        """Start the plane and the node; return once the Node is Ready and DNS answers."""
        if os.geteuid() != 0:
            raise NodeError("the dev node needs root (network and mount namespaces, cgroups)")
        hostpkgs_missing = hostpkgs.missing()
        if hostpkgs_missing:
            raise NodeError(
                f"missing Debian packages {hostpkgs_missing}: run `flowrun dev build` as root"
            )
        if len(str(self.paths.containerd_sock)) > _SOCKET_LIMIT:
            raise NodeError(
                f"state dir {self.state_dir} is too long for unix sockets; "
                "use a shorter --state-dir"
            )
        sweep_stale()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "node.json").write_text(json.dumps(asdict(self.state)) + "\n")
        nodehost.register(
            self.state.id, self.state_dir, netns=self.state.netns, cgroup=self.state.cgroup
        )
        deadline = time.monotonic() + timeout
        try:
            self._start_all(deadline)
        except BaseException:
            self.stop(remove=False)
            raise

    def _start_all(self, deadline: float) -> None:
        nodehost.create_netns(self.state.netns)
        nodehost.create_cgroups(self.state.cgroup)
        self._write_configs()
        self.plane.start(timeout=max(deadline - time.monotonic(), 1))
        holder = self._spawn_holder()
        net = f"--net=/run/netns/{self.state.netns}"
        # containerd, kubelet and kube-proxy share the holder's mount namespace (Pod mounts, the
        # sysctl files); CoreDNS and the scheduler need only the network namespace.
        in_node = ["nsenter", f"--mount=/proc/{holder}/ns/mnt", net, "--"]
        in_net = ["nsenter", net, "--"]
        containerd = _tool("containerd")
        config = str(self.paths.containerd_config)
        self._spawn("containerd", [*in_node, containerd, "--config", config], exe=containerd)
        self.plane.wait_ready("containerd", deadline, self._containerd_ready)
        self._import_images()
        kubeconfig = f"--kubeconfig={self.plane.kubeconfig}"
        corefile = str(self.paths.file("Corefile"))
        commands = {
            "coredns": (in_net, ["-conf", corefile]),
            "kube-scheduler": (in_net, [kubeconfig, "--leader-elect=false", "--secure-port=0"]),
            "kubelet": (in_node, self._kubelet_args()),
            "kube-proxy": (in_node, [f"--config={self.paths.file('kube-proxy.yaml')}"]),
        }
        for name, (prefix, args) in commands.items():
            self._spawn(name, [*prefix, str(self.bin_dir / name), *args])
        self.plane.wait_ready("kubelet", deadline, self._node_ready)
        self.plane.wait_ready("coredns", deadline, lambda: self._probe("127.0.0.1:8181/ready"))
        proxy_healthz = "127.0.0.1:10256/healthz"
        self.plane.wait_ready("kube-proxy", deadline, lambda: self._probe(proxy_healthz))

    def _write_configs(self) -> None:
        p = self.paths
        kubeconfig = self.plane.kubeconfig
        for d in (
            p.root / "containerd",
            p.cni_conf_dir,
            p.kubelet_dir,
            p.sysctl_dir,
            p.root / "pod-logs",
        ):
            d.mkdir(parents=True, exist_ok=True)
        p.containerd_config.write_text(nodeconfig.containerd_toml(p))
        conflist = nodeconfig.cni_conflist(p, network=self.state.netns)
        (p.cni_conf_dir / "10-flowrun.conflist").write_text(conflist)
        p.file("kubelet.yaml").write_text(
            nodeconfig.kubelet_yaml(
                p, ca_cert=self.plane.pki.ca_cert, cgroup_root="/" + self.state.cgroup
            )
        )
        p.file("kube-proxy.yaml").write_text(nodeconfig.kube_proxy_yaml(kubeconfig))
        p.file("Corefile").write_text(nodeconfig.corefile(kubeconfig))
        p.file("resolv.conf").write_text(nodeconfig.resolv_conf())

    def _kubelet_args(self) -> list[str]:
        return [
            f"--config={self.paths.file('kubelet.yaml')}",
            f"--kubeconfig={self.plane.kubeconfig}",
            f"--root-dir={self.paths.kubelet_dir}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ]

    def _spawn(self, name: str, argv: list[str], *, exe: str = "") -> int:
        """Start `name` through the plane's process table, then move it into the node's cgroup."""
        self.plane.spawn(name, argv, exe=exe or str(self.bin_dir / name))
        pid = self.plane.state.pids[name]
        nodehost.join_cgroup(self.state.cgroup, pid)
        return pid

    def _spawn_holder(self) -> int:
        """A process that holds the private mount namespace with the sysctl files bound in it."""
        script = ["set -e"]
        for key in nodeconfig.KUBELET_SYSCTLS:
            source = Path("/proc/sys") / key
            copy = self.paths.sysctl_dir / key.replace("/", ".")
            copy.write_text(source.read_text())
            script.append(f"mount --bind {copy} {source}")
        # Image pulls by containerd resolve through CoreDNS, never the host's off-machine resolver.
        script.append(f"mount --bind {self.paths.file('resolv.conf')} /etc/resolv.conf")
        sleep = _tool("sleep")
        script.append(f"exec {sleep} infinity")
        unshare = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"]
        name = "mount-holder"
        pid = self._spawn(name, [*unshare, "\n".join(script)], exe=sleep)
        # Alive as `sleep` means the shell got past every mount.
        self.plane.wait_ready(
            "mount-holder", time.monotonic() + 10, lambda: self.plane.processes()[name][1]
        )
        return pid

    def _ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_tool("ctr"), "--address", str(self.paths.containerd_sock), "-n", "k8s.io", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def _containerd_ready(self) -> bool:
        return (
            self.paths.containerd_sock.exists() and self._ctr("version", timeout=10).returncode == 0
        )

    def _import_images(self) -> None:
        pause_root = self.paths.root / "pause-rootfs"
        pause_root.mkdir(exist_ok=True)
        shutil.copy2(self.bin_dir / "pause", pause_root / "pause")
        archive = self.paths.root / "pause.tar"
        oci.pack(pause_root, SANDBOX_IMAGE, archive, oci.ImageConfig(entrypoint=["/pause"]))
        shutil.rmtree(pause_root)
        for image in (archive, *self.images):
            self.import_image(image)
        archive.unlink()

    def import_image(self, archive: Path) -> None:
        """Load an OCI archive (every image it names) into the node's containerd."""
        result = self._ctr("images", "import", str(archive))
        if result.returncode != 0:
            raise NodeError(f"importing {archive} into containerd failed: {result.stderr}")

    def kill_container(self, container_id: str) -> None:
        """SIGKILL a container's process through containerd, as the kernel's OOM killer or a
        crash would end it: no SIGTERM, no grace period (`containerd://<id>` or `<id>`)."""
        found = container_id.removeprefix("containerd://")
        result = self._ctr("tasks", "kill", "--signal", "SIGKILL", found, timeout=60)
        if result.returncode != 0:
            raise NodeError(f"killing container {found} failed: {result.stderr}")

    def _probe(self, address: str) -> bool:
        """An HTTP GET inside the node's network namespace (where CoreDNS and kube-proxy listen)."""
        code = f"import urllib.request as u; u.urlopen('http://{address}', timeout=2)"
        argv = ["nsenter", f"--net=/run/netns/{self.state.netns}", "--", sys.executable, "-c", code]
        return subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode == 0

    def _node_ready(self) -> bool:
        try:
            node = json.loads(self.plane.get(f"/api/v1/nodes/{NODE_NAME}"))
        except OSError:
            return False
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )
        taints = node.get("spec", {}).get("taints") or []
        return ready and not any(t["key"] == "node.kubernetes.io/not-ready" for t in taints)

    # --- stop --------------------------------------------------------------------------------

    def stop(self, *, remove: bool = True) -> None:
        """Stop every recorded process by PID, then what they left: containers, cgroups, netns."""
        self.plane.stop(remove=False)
        nodehost.teardown(self.state.netns, self.state.cgroup, self.paths.root)
        if remove:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            nodehost.unregister(self.state.id)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """Tear down every registered node whose owner and recorded processes are all gone."""
    swept = []
    for node_id, entry in nodehost.registered().items():
        state_dir = Path(str(entry.get("state_dir", "")))
        plane = ControlPlane.load(state_dir) if (state_dir / "state.json").exists() else None
        owner = int(str(entry.get("owner", 0)))
        owner_alive = owner > 0 and _pid_alive(owner)
        if owner_alive or (plane is not None and any(a for _, a in plane.processes().values())):
            continue
        node_dir = NodePaths(state_dir / "node").root
        nodehost.teardown(str(entry["netns"]), str(entry["cgroup"]), node_dir)
        nodehost.unregister(node_id)
        swept.append(node_id)
    return swept
