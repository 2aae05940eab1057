"""Fixtures of the runner-Pod tests: the operator on the product path (no --allow-in-process).

The session's Helm-installed operator Pod when there is one (`node_operator` watches every
namespace, so no second operator may run beside it), else `flowrun operator` as a host process
watching this test's namespace (with the FlowRun CRD applied here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.waiting import wait_for
from support.flowruns import ROOT, FlowRuns, crd_established
from support.nodeops import HostOperator, PodOperator


@pytest.fixture
def the_operator(
    request: pytest.FixtureRequest, dev_node: Any, node_namespace: str, tmp_path: Path
) -> Iterator[HostOperator | PodOperator]:
    try:
        release = request.getfixturevalue("node_operator")
    except pytest.FixtureLookupError:
        release = None
    if release is not None:
        yield PodOperator(release)
        return
    dev_node.kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
    wait_for(lambda: crd_established(dev_node.kubectl, "flowruns.flowrun.dev"), what="the CRD")
    host = HostOperator(dev_node.node.kubeconfig, tmp_path, node_namespace, dev_node.image)
    host.start()
    yield host
    host.stop()


@pytest.fixture
def frs(dev_node: Any, node_namespace: str, tmp_path: Path) -> FlowRuns:
    return FlowRuns(dev_node.kubectl, node_namespace, tmp_path)


@pytest.fixture
def host_operator(
    dev_node: Any, node_namespace: str, tmp_path: Path
) -> Iterator[Callable[..., HostOperator]]:
    """Start the operator as a host process with these extra flags (e.g. --runner-resources,
    which the Helm-installed one has from the chart); stopped at the end."""
    dev_node.kubectl("apply", "-f", str(ROOT / "crds" / "flowrun.yaml"))
    wait_for(lambda: crd_established(dev_node.kubectl, "flowruns.flowrun.dev"), what="the CRD")
    started: list[HostOperator] = []

    def start(*args: str) -> HostOperator:
        kubeconfig, image = dev_node.node.kubeconfig, dev_node.image
        started.append(HostOperator(kubeconfig, tmp_path, node_namespace, image, *args).start())
        return started[-1]

    yield start
    for host in started:
        host.stop()
