"""Start and stop a real Kubernetes control plane on loopback: etcd, apiserver, controller-manager.

Used by `flowrun dev up/down/status` and by the test suite's session fixture, so users and tests
run the same plane. The API server decides schema validation, status subresources and RBAC; the
controller-manager runs garbage collection, namespace deletion and default ServiceAccounts. Pods
run only with `flowrun dev up --node` (flowrun.dev.node), which starts this same plane inside the
node's network namespace (`netns`) behind a loopback forwarder. Every process is started in its own
session and recorded by PID in `state.json`, so `down` stops exactly what `up` started and nothing
else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flowrun.dev import kubeconfig, pki
from flowrun.dev.nodeconfig import NODE_IP

_STOP_TIMEOUT = 20.0


class ControlPlaneError(RuntimeError):
    """The plane did not come up; the message carries the failing process' log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def default_state_dir() -> Path:
    explicit = os.environ.get("FLOWRUN_DEV_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "flowrun" / "dev"


@dataclass
class PlaneState:
    """What `up` started, persisted so that another process can report on it or stop it."""

    bin_dir: str
    server: str = ""
    kubeconfig: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    # Inside a node's network namespace: its name; the host reaches the plane by a forwarder.
    netns: str = ""
    # name -> executable, for processes that are not a binary of bin_dir (the forwarder).
    exes: dict[str, str] = field(default_factory=dict)


def _alive(pid: int, binary: Path) -> bool:
    """True if `pid` still runs `binary` (guards against a recycled PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    return cmdline == str(binary)


class ControlPlane:
    """A local control plane rooted in `state_dir`.

    Example:
        plane = ControlPlane(Path("plane-state"), bin_dir=build.ensure_built())
        plane.start()
        ...  # KUBECONFIG=plane.kubeconfig
        plane.stop()
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        bin_dir: Path,
        tie_to_parent: bool = False,
        netns: str = "",
        profiling: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.bin_dir = bin_dir
        # Benchmarks set this: the apiserver then serves /debug/pprof (CPU profiles of its work).
        self.profiling = profiling
        # Tests set this: a test run killed hard (timeout, SIGKILL) must not leave a plane behind.
        self.tie_to_parent = tie_to_parent
        self.pki = pki.Pki(state_dir / "pki")
        self.state = PlaneState(bin_dir=str(bin_dir), netns=netns)
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def server(self) -> str:
        return self.state.server

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @classmethod
    def load(cls, state_dir: Path) -> ControlPlane | None:
        """The plane recorded in `state_dir`, or None if there is none."""
        path = state_dir / "state.json"
        if not path.exists():
            return None
        state = PlaneState(**json.loads(path.read_text()))
        plane = cls(state_dir, bin_dir=Path(state.bin_dir))
        plane.state = state
        return plane

    def processes(self) -> dict[str, tuple[int, bool]]:
        """name -> (pid, alive) for every process this plane started."""
        return {name: (pid, _alive(pid, self._exe(name))) for name, pid in self.state.pids.items()}

    def _exe(self, name: str) -> Path:
        return Path(self.state.exes.get(name) or self.bin_dir / name)

    def is_running(self) -> bool:
        procs = self.processes()
        return bool(procs) and all(alive for _, alive in procs.values())

    # --- start -------------------------------------------------------------------------------

    def start(self, *, timeout: float = 120.0) -> None:
        """Start etcd, kube-apiserver and kube-controller-manager; return once all are ready."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        deadline = time.monotonic() + timeout
        try:
            self._start_all(deadline)
        except BaseException:
            self.stop(remove=False)
            raise

    def _start_all(self, deadline: float) -> None:
        pki.generate(self.pki.directory)
        ports = {"etcd": free_port(), "etcd-peer": free_port(), "apiserver": free_port()}
        self.state.ports = ports
        self.state.server = f"https://127.0.0.1:{ports['apiserver']}"
        self.state.started_at = time.time()
        if self.state.netns:
            forwarder = [
                sys.executable,
                "-m",
                "flowrun.dev.forward",
                f"/run/netns/{self.state.netns}",
            ]
            self.spawn("forwarder", [*forwarder, *map(str, ports.values())], exe=sys.executable)
        self.spawn("etcd", self._etcd_args(ports))
        self.wait_ready("etcd", deadline, self._etcd_healthy)
        self.spawn("kube-apiserver", self._apiserver_args(ports))
        kubeconfig.write_admin(self.kubeconfig, server=self.server, pki=self.pki)
        self.wait_ready("kube-apiserver", deadline, lambda: self._get("/readyz") == 200)
        self.spawn("kube-controller-manager", self._kcm_args())
        # The default ServiceAccount is made by the controller-manager: its first visible work.
        sa_path = "/api/v1/namespaces/default/serviceaccounts/default"
        self.wait_ready("kube-controller-manager", deadline, lambda: self._get(sa_path) == 200)

    def _etcd_args(self, ports: dict[str, int]) -> list[str]:
        client = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        return [
            "--name=flowrun-dev",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=flowrun-dev={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",
            "--auto-compaction-retention=1",
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        ]

    def _apiserver_args(self, ports: dict[str, int]) -> list[str]:
        p = self.pki
        args = [
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            "--advertise-address=127.0.0.1",
            # No default route may exist here; the endpoint reconciler would need one.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={p.directory}",
            f"--tls-cert-file={p.serving_cert}",
            f"--tls-private-key-file={p.serving_key}",
            f"--client-ca-file={p.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # Fresh namespaces would race the controller that creates their default SA.
            "--disable-admission-plugins=ServiceAccount",
            # As strict clusters do: setting blockOwnerDeletion needs update on owner/finalizers.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--profiling={str(self.profiling).lower()}",
            *(self._node_apiserver_args() if self.state.netns else []),
        ]
        return self._for_pods(args) if self.state.netns else args

    @staticmethod
    def _for_pods(args: list[str]) -> list[str]:
        """On a node, Pods use the API as in any cluster: through the `kubernetes` Service (so the
        apiserver advertises the node IP and keeps that Service's endpoints), with a token from
        their ServiceAccount. Listening on every address is safe: the namespace has no uplink."""
        changed = {
            "--bind-address": "0.0.0.0",
            "--advertise-address": NODE_IP,
            "--endpoint-reconciler-type": "lease",
        }
        out = []
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag == "--disable-admission-plugins":
                continue
            out.append(f"{flag}={changed[flag]}" if flag in changed else arg)
        return out

    def _node_apiserver_args(self) -> list[str]:
        # Logs, exec and port-forward go from the apiserver to the kubelet: authenticate as admin,
        # and dial the node's InternalIP, never its hostname (that would ask the host's resolver).
        return [
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={self.pki.admin_cert}",
            f"--kubelet-client-key={self.pki.admin_key}",
        ]

    def _kcm_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            f"--service-account-private-key-file={self.pki.sa_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--profiling=false",
        ]

    def spawn(self, name: str, args: list[str], *, exe: str = "") -> None:
        """Start `name` (a binary of bin_dir, or `exe` with `args` as its whole argv)."""
        if exe:
            self.state.exes[name] = exe
        argv = args if exe else [str(self.bin_dir / name), *args]
        if self.state.netns and not exe:
            argv = ["nsenter", f"--net=/run/netns/{self.state.netns}", "--", *argv]
        log = (self.state_dir / "logs" / f"{name}.log").open("ab")
        # setpriv (util-linux) sets the parent-death signal and execs the binary under the same PID;
        # a preexec_fn would do the same but is unsafe once the parent has threads. KILL, not
        # TERM: nobody is left to wait for a graceful stop, which can be long (kube-apiserver's
        # waits up to its 60 s request timeout; one of the node's processes outlived a 60 s
        # wait in CI); what a killed node leaves, the next start sweeps.
        setpriv = shutil.which("setpriv") if self.tie_to_parent else None
        prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        proc = subprocess.Popen(
            [*prefix, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.state_dir,
        )
        log.close()
        self._children[name] = proc
        self.state.pids[name] = proc.pid
        self._save()

    def _save(self) -> None:
        self.state_file.write_text(json.dumps(asdict(self.state), indent=2) + "\n")

    def wait_ready(self, name: str, deadline: float, ready: Callable[[], bool]) -> None:
        while time.monotonic() < deadline:
            proc = self._children.get(name)
            if proc is not None and proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                )
            if ready():
                return
            time.sleep(0.2)
        raise ControlPlaneError(f"{name} was not ready in time:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.state_dir / "logs" / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _etcd_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.state.ports['etcd']}/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _get(self, path: str) -> int:
        """Status code of an admin GET, or 0 when the server does not answer yet."""
        try:
            with urllib.request.urlopen(
                self.server + path, timeout=3, context=self.ssl_context()
            ) as resp:
                status: int = resp.status
                return status
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            return 0

    def get(self, path: str) -> bytes:
        """An admin GET (for `/version`, `/readyz?verbose`)."""
        with urllib.request.urlopen(self.server + path, timeout=5, context=self.ssl_context()) as r:
            body: bytes = r.read()
            return body

    # --- stop --------------------------------------------------------------------------------

    def stop(self, *, remove: bool = True) -> None:
        """Stop every process this plane started, by PID, newest first; then remove the state."""
        for name in reversed(list(self.state.pids)):
            self._terminate(name, self.state.pids[name])
        self.state.pids = {}
        if remove:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        elif self.state_dir.exists():
            self._save()

    def _terminate(self, name: str, pid: int) -> None:
        child = self._children.pop(name, None)
        if child is not None:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            return
        binary = self._exe(name)
        if not _alive(pid, binary):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT
        while time.monotonic() < deadline and _alive(pid, binary):
            time.sleep(0.1)
        if _alive(pid, binary):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
