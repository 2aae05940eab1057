"""Fixtures for the controller tests: the FlowRun CRD, the operator as a real subprocess
(`flowrun.dev.operator_process`), namespaces and FlowRuns (helpers in `support.flowruns`).

The operator runs in its own session so a test can SIGTERM or SIGKILL exactly that PID (the
restart test), never anything found by name. It watches only namespaces named `fr-op-*`, which
these fixtures create, so it never touches other suites' work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from support.flowruns import (
    FLOWS,
    NS_PREFIX,
    OWN_PREFIX,
    ROOT,
    FlowRuns,
    crd_established,
    make_namespace,
)


def operator_process(
    kubeconfig: Path, log: Path, tasks_dir: Path, args: list[str]
) -> OperatorProcess:
    """The operator with the test task modules on its path (Local clusters run in it)."""
    env = {
        "PYTHONPATH": os.pathsep.join([str(FLOWS), os.environ.get("PYTHONPATH", "")]),
        "FRTASKS_DIR": str(tasks_dir),
    }
    return OperatorProcess(kubeconfig, log, ["--status-interval=0.5", *args], env=env)


@pytest.fixture(scope="session")
def flowrun_crd(kubectl: Any) -> None:
    kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
    wait_for(lambda: crd_established(kubectl, "flowruns.flowrun.dev"), what="FlowRun CRD")
    wait_for(lambda: crd_established(kubectl, "flowtemplates.flowrun.dev"), what="FlowTemplate CRD")


@pytest.fixture(scope="session")
def tasks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frtasks")


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


class Operators:
    """Operators started for one test (`start_operator(*args)`); their logs as one."""

    def __init__(self, kubeconfig: Path, log_dir: Path, tasks_dir: Path) -> None:
        self.kubeconfig, self.log_dir, self.tasks_dir = kubeconfig, log_dir, tasks_dir
        self.started: list[OperatorProcess] = []

    def __call__(self, *args: str) -> OperatorProcess:
        log = self.log_dir / f"operator-{len(self.started)}.log"
        proc = operator_process(self.kubeconfig, log, self.tasks_dir, list(args))
        self.started.append(proc)
        return proc.start()

    def log_text(self) -> str:
        return "\n".join(proc.log_text() for proc in self.started)


@pytest.fixture
def start_operator(kubeconfig_path: Path, tmp_path: Path, tasks_dir: Path) -> Iterator[Operators]:
    """Start operators for one test; every one is stopped (by PID) afterwards."""
    operators = Operators(kubeconfig_path, tmp_path, tasks_dir)
    yield operators
    for proc in operators.started:
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
    proc = operator_process(
        kubeconfig_path, log, tasks_dir, ["--allow-in-process", "-n", f"{NS_PREFIX}*"]
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def frs(kubectl: Any, op_namespace: str, tasks_dir: Path) -> FlowRuns:
    return FlowRuns(kubectl, op_namespace, tasks_dir)
