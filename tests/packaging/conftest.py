"""Fixtures of the packaging tests: the pinned helm binary (no control plane needed), and, on the
control plane, namespaces made for one module and the dask-kubernetes CRDs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dask_kubernetes
import pytest
from chartkit import CRD_SOURCE, OPERATOR_RULES, operator_roles, render, rules_of
from opkit import unique, wait_for
from rbackit import Accounts, Rule

from flowrun.dev import build
from support.flowruns import crd_established

NO_FINALIZERS = '{"metadata":{"finalizers":null}}'


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """The helm that `flowrun dev build` compiles (built on first use, like the control plane)."""
    return build.ensure_built() / "helm"


@pytest.fixture(scope="module")
def namespaces(kubectl: Any) -> Iterator[Callable[..., str]]:
    """Make namespaces for this module; all deleted (not waited for) at its end."""
    created: list[str] = []

    def make(
        prefix: str = "fr-pkg", *, name: str | None = None, labels: tuple[str, ...] = ()
    ) -> str:
        ns = name or unique(prefix)
        if kubectl("get", "namespace", ns, check=False).returncode != 0:
            kubectl("create", "namespace", ns)
            created.append(ns)
        if labels:
            kubectl("label", "namespace", ns, "--overwrite", *labels)
        return ns

    yield make
    for ns in created:
        # The operators that put finalizers on these FlowRuns are gone: without this, the namespace
        # would wait for the next operator of a later test to release them (and disturb it).
        names = kubectl("get", "flowruns", "-n", ns, "-o", "name", check=False).stdout.split()
        for name in names:
            kubectl("patch", name, "-n", ns, "--type=merge", "-p", NO_FINALIZERS, check=False)
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="session")
def dask_crds(kubectl: Any) -> None:
    """The dask-kubernetes CRDs, from the installed dask-kubernetes package's own chart."""
    crds = Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm"
    crds = crds / "dask-kubernetes-operator" / "crds"
    for name in ("daskcluster", "daskworkergroup", "daskautoscaler"):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds / f"{name}.yaml"))
        wait_for(lambda n=name: crd_established(kubectl, f"{n}s.kubernetes.dask.org"))


@pytest.fixture(scope="session")
def flowrun_crd(kubectl: Any) -> None:
    """The FlowRun CRD from crds/ (a Helm release may take it over later: --take-ownership)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_SOURCE))
    for name in ("flowruns.flowrun.dev", "flowtemplates.flowrun.dev"):
        wait_for(lambda n=name: crd_established(kubectl, n), what=f"the CRD {name}")


@pytest.fixture(scope="module")
def chart_rules(helm_bin: Path) -> frozenset[Rule]:
    """The operator's rules as the chart renders them (cluster-wide, defaults)."""
    rules = {t for r in operator_roles(render(helm_bin)) for t in rules_of(r)}
    assert rules == OPERATOR_RULES
    return frozenset(rules)


@pytest.fixture
def account_without(
    kubectl: Any,
    namespaces: Callable[..., str],
    sa_kubeconfig: Callable[[str, str], Path],
    chart_rules: frozenset[Rule],
) -> Iterator[Accounts]:
    accounts = Accounts(kubectl, namespaces, sa_kubeconfig, chart_rules)
    yield accounts
    accounts.delete_all()
