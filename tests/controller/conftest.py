"""Fixtures for the controller tests: the FlowRun CRD, the operator as a real subprocess, and
helpers to apply FlowRuns and poll their status with deadlines.

The operator runs as `python -m flowrun.cli operator` in its own session so a test can SIGTERM
or SIGKILL exactly that PID (the restart test), never anything found by name. It watches only
namespaces named `fr-op-*`, which these fixtures create, so it never touches other suites' work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.controlplane import free_port
from flowrun.dev.waiting import wait_for

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
FLOWS = HERE / "flows"
NS_PREFIX = "fr-op-"  # watched by the shared operator
OWN_PREFIX = "fr-own-"  # for tests that run an operator of their own


class OperatorProcess:
    """`flowrun operator` in a subprocess; stopped by its own PID only."""

    def __init__(self, kubeconfig: Path, log: Path, tasks_dir: Path, args: list[str]) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.tasks_dir = tasks_dir
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.liveness = 0
        self.metrics_port = 0

    def start(self) -> OperatorProcess:
        self.liveness = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join([str(FLOWS), os.environ.get("PYTHONPATH", "")]),
            "FRTASKS_DIR": str(self.tasks_dir),
        }
        cmd = [
            sys.executable,
            "-m",
            "flowrun.cli",
            "operator",
            f"--liveness-port={self.liveness}",
            f"--metrics-port={self.metrics_port}",
            "--status-interval=0.5",
            *self.args,
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        wait_for(self._ready, timeout=60, what=f"operator ready (log: {self.log})")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited: {self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness}/healthz", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text: str = resp.read().decode()
            return text

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()


class FlowRuns:
    """Apply FlowRuns in one namespace and read them back."""

    def __init__(self, kubectl: Any, namespace: str, tasks_dir: Path) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.tasks_dir = tasks_dir

    def apply(self, name: str, spec: dict[str, Any], *, server_side: bool = False) -> None:
        """`kubectl apply`; client-side apply drops null values (`default: null`), server-side
        apply keeps them, as GitOps tools do."""
        body = {
            "apiVersion": "flowrun.dev/v1alpha1",
            "kind": "FlowRun",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        how = ["--server-side"] if server_side else []
        self.kubectl("apply", *how, "-f", "-", input=json.dumps(body))

    def get(self, name: str) -> dict[str, Any] | None:
        out = self.kubectl("get", "flowrun", name, "-n", self.namespace, "-o", "json", check=False)
        if out.returncode != 0:
            return None
        found: dict[str, Any] = json.loads(out.stdout)
        return found

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def wait_phase(self, name: str, *phases: str, timeout: float = 90) -> dict[str, Any]:
        wanted = phases or ("Succeeded", "Failed", "Cancelled")

        def check() -> dict[str, Any] | None:
            status = self.status(name)
            return status if status.get("phase") in wanted else None

        result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{name} in {wanted}")
        return result

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get",
            "events",
            "-n",
            self.namespace,
            "--field-selector",
            f"involvedObject.name={name}",
            "-o",
            "json",
        )
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return items

    def event_reasons(self, name: str) -> set[str]:
        return {e["reason"] for e in self.events(name)}

    def runs(self, key: str) -> int:
        folder = self.tasks_dir / f"runs-{key}"
        return len(list(folder.iterdir())) if folder.exists() else 0

    def open_gate(self, key: str) -> None:
        (self.tasks_dir / f"gate-{key}").write_text("")


def task(name: str, fn: str, *args: Any, **options: Any) -> dict[str, Any]:
    """An inline task dict: `task("a", "frtasks:add", 1, 2, maxRetries=1)`."""
    entry: dict[str, Any] = {"name": name, "fn": f"frtasks:{fn}", **options}
    if args:
        entry["args"] = list(args)
    return entry


def local_spec(tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A FlowRun spec running on the Local Dask provider."""
    flow = {"tasks": tasks, **spec.pop("flow", {})}
    executor = spec.pop("executor", {"type": "Dask", "dask": {"cluster": "Local"}})
    return {"flow": flow, "executor": executor, **spec}


@pytest.fixture(scope="session")
def flowrun_crd(kubectl: Any) -> None:
    kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
    wait_for(lambda: crd_established(kubectl, "flowruns.flowrun.dev"), what="FlowRun CRD")


def crd_established(kubectl: Any, name: str) -> bool:
    out = kubectl("get", "crd", name, "-o", "json", check=False)
    if out.returncode != 0:
        return False
    conditions = json.loads(out.stdout).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="session")
def tasks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frtasks")


def make_namespace(kubectl: Any, prefix: str = NS_PREFIX) -> str:
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    return name


@pytest.fixture
def op_namespace(kubectl: Any, flowrun_crd: None) -> Iterator[str]:
    name = make_namespace(kubectl)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def own_frs(kubectl: Any, flowrun_crd: None, tasks_dir: Path) -> Iterator[FlowRuns]:
    """A namespace the shared operator does not watch, for tests that start their own."""
    name = make_namespace(kubectl, OWN_PREFIX)
    yield FlowRuns(kubectl, name, tasks_dir)
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def start_operator(
    kubeconfig_path: Path, tmp_path: Path, tasks_dir: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start operators for one test; every one is stopped (by PID) afterwards."""
    started: list[OperatorProcess] = []

    def start(*args: str) -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        proc = OperatorProcess(kubeconfig_path, log, tasks_dir, list(args))
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def shared_operator(
    kubeconfig_path: Path,
    flowrun_crd: None,
    tmp_path_factory: pytest.TempPathFactory,
    tasks_dir: Path,
) -> Iterator[OperatorProcess]:
    """One operator for a module's tests, watching every `fr-op-*` namespace."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(
        kubeconfig_path, log, tasks_dir, ["--allow-in-process", "-n", f"{NS_PREFIX}*"]
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def frs(kubectl: Any, op_namespace: str, tasks_dir: Path) -> FlowRuns:
    return FlowRuns(kubectl, op_namespace, tasks_dir)
