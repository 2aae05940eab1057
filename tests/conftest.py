"""Shared fixtures: a REAL local control plane (etcd + kube-apiserver + kube-controller-manager),
and, for tests that need Pods to run, a REAL node (`dev_node`: kubelet, containerd, kube-proxy,
CoreDNS, scheduler; the same code as `flowrun dev up --node`, root only).

One plane per test session (two cores cannot afford one per test), a fresh namespace per test, and
helpers to run kubectl/helm as the admin or as another identity so that RBAC is really enforced.
The plane is the same code as `flowrun dev up`; teardown stops exactly the PIDs it started.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowrun.dev import build, helmop, image, kubeconfig
from flowrun.dev.controlplane import ControlPlane
from flowrun.dev.node import Node
from flowrun.dev.tool import Tool
from flowrun.dev.waiting import wait_for


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    bins = build.ensure_built()
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"), bin_dir=bins, tie_to_parent=True)
    plane.start()
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    try:
        yield plane
    finally:
        plane.stop()
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous


@pytest.fixture(scope="session")
def kubeconfig_path(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Tool:
    return Tool(control_plane.bin_dir / "kubectl", control_plane.kubeconfig)


@pytest.fixture(scope="session")
def helm(control_plane: ControlPlane) -> Tool:
    return Tool(control_plane.bin_dir / "helm", control_plane.kubeconfig)


@pytest.fixture
def namespace(kubectl: Tool) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    yield name
    # Not waited for: the namespace controller finishes it in the background.
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def user_kubeconfig(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Path]:
    """A kubeconfig for `user` in `groups`, authenticated by a client certificate."""

    def make(user: str, groups: Sequence[str] = ()) -> Path:
        path = tmp_path_factory.mktemp("users") / f"{user.replace(':', '_')}.kubeconfig"
        return kubeconfig.write_user(
            path,
            server=control_plane.server,
            pki=control_plane.pki,
            user=user,
            groups=tuple(groups),
        )

    return make


@pytest.fixture(scope="session")
def sa_kubeconfig(
    control_plane: ControlPlane, kubectl: Tool, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], Path]:
    """A kubeconfig holding a TokenRequest token of ServiceAccount `namespace/name`."""

    def make(namespace: str, name: str) -> Path:
        token = kubectl("create", "token", name, "-n", namespace, "--duration=1h").stdout.strip()
        path = tmp_path_factory.mktemp("sa") / f"{namespace}-{name}.kubeconfig"
        return kubeconfig.write_token(
            path, server=control_plane.server, pki=control_plane.pki, token=token
        )

    return make


@dataclass(frozen=True)
class DevNode:
    """The session's node: its kubectl, and the name of the project's image for Pods."""

    node: Node
    kubectl: Tool
    image: str
    dask_operator_image: str  # the Dockerfile's dask-operator target (same archive)

    @property
    def helm(self) -> Tool:
        return Tool(self.node.bin_dir / "helm", self.node.kubeconfig)


@pytest.fixture(scope="session")
def dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNode]:
    """One node per test session, tied to the test run (it dies with it, like the plane).

    As root it never skips: a node that fails to start fails the tests that use it.
    """
    if os.geteuid() != 0:
        pytest.skip("the dev node needs root (network/mount namespaces, cgroups); run as root")
    bins = build.ensure_built()
    built = image.ensure_image()
    node = Node(
        tmp_path_factory.mktemp("node"), bin_dir=bins, images=(built.archive,), tie_to_parent=True
    )
    node.start()
    try:
        yield DevNode(
            node, Tool(bins / "kubectl", node.kubeconfig), built.name, built.dask_operator
        )
    finally:
        node.stop()


@pytest.fixture
def node_namespace(dev_node: DevNode) -> Iterator[str]:
    name = f"n-{uuid.uuid4().hex[:10]}"
    dev_node.kubectl("create", "namespace", name)
    # On the node, Pods get ServiceAccount tokens: a Pod created before the controller-manager
    # made the namespace's default ServiceAccount would be refused.
    wait_for(
        lambda: dev_node.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        timeout=60,
        what=f"the default ServiceAccount of {name}",
    )
    yield name
    dev_node.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def node_operator(dev_node: DevNode) -> Iterator[helmop.HelmOperator]:
    """The chart, Helm-installed on the node (daskOperator.enabled=true): the flowrun operator
    and the dask-kubernetes operator run as Pods of the local images, under Pod Security
    "restricted", watching every namespace. Per module, uninstalled after it (its FlowRuns
    deleted first), so that it never runs next to another test's operator (about 20 s each)."""
    installed = helmop.install(
        dev_node.kubectl, dev_node.helm, dev_node.image, dev_node.dask_operator_image
    )
    yield installed
    helmop.uninstall(installed)


@pytest.fixture
def restricted_namespace(dev_node: DevNode) -> Iterator[str]:
    """A fresh namespace on the node that enforces Pod Security "restricted"."""
    name = f"r-{uuid.uuid4().hex[:10]}"
    helmop.create_restricted_namespace(dev_node.kubectl, name)
    yield name
    dev_node.kubectl("delete", "namespace", name, "--wait=false", check=False)


_GUARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@pytest.fixture(autouse=True)
def _no_leaked_signal_handlers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that leaves a SIGINT/SIGTERM handler other than the one it found: a leaked
    handler swallows a later test's Ctrl-C (or SIGTERM). The handler found is put back first,
    so that only the leaking test fails."""
    before = {sig: signal.getsignal(sig) for sig in _GUARDED_SIGNALS}
    yield
    leaked = {sig: now for sig in _GUARDED_SIGNALS if (now := signal.getsignal(sig)) != before[sig]}
    for sig in leaked:
        signal.signal(sig, before[sig])
    if leaked:
        named = ", ".join(f"{sig.name}: {handler!r}" for sig, handler in leaked.items())
        pytest.fail(f"{request.node.nodeid} left signal handlers installed ({named})")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used an operator (a fixture with a `log_text()`: a process, the
    operators a test started, the chart's Pod) shows the end of its log: a run whose status never
    came is otherwise a timeout with nothing to go on."""
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            if callable(log_text := getattr(value, "log_text", None)):
                try:
                    tail = str(log_text())[-8000:]
                except Exception as exc:  # a diagnosis must not hide the failure it explains
                    tail = f"(not read: {exc})"
                report.sections.append((f"operator log ({name}), its end", tail))
    return report
