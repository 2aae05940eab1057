"""Fixtures of the runner-Pod tests: the FlowRun CRD on the node, and the operator as a host
process on the product path (no --allow-in-process) watching one test's namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for
from support.flowruns import ROOT, FlowRuns, crd_established


@pytest.fixture(scope="module")
def node_crd(dev_node: Any) -> None:
    dev_node.kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
    wait_for(lambda: crd_established(dev_node.kubectl, "flowruns.flowrun.dev"), what="the CRD")


@pytest.fixture
def host_operator(
    dev_node: Any, node_crd: None, node_namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator, as a host process, on the product path, for this test's namespace."""
    proc = OperatorProcess(
        dev_node.node.kubeconfig,
        tmp_path / "operator.log",
        ["-n", node_namespace, f"--default-image={dev_node.image}", "--status-interval=0.5"],
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def frs(dev_node: Any, node_namespace: str, tmp_path: Path) -> FlowRuns:
    return FlowRuns(dev_node.kubectl, node_namespace, tmp_path)
