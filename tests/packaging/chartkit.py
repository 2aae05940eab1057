"""Helpers shared by the packaging tests: where the chart is, and rendering it with the real helm.

The helm binary is the one `flowrun dev build` compiles (pinned version, offline `helm template`
assumes the Kubernetes version baked in by its ldflags), so static chart tests need no cluster.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "flowrun-operator"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
CRD_SOURCE = ROOT / "crds" / "flowrun.yaml"
CRD_COPY = CHART / "files" / "crds" / "flowrun.yaml"


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # Offline commands must not read the developer's kubeconfig or helm repositories.
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def set_args(values: dict[str, str] | None) -> list[str]:
    return [a for k, v in (values or {}).items() for a in ("--set", f"{k}={v}")]


def render(
    helm: Path,
    *,
    values_files: Iterable[Path] = (),
    values: dict[str, str] | None = None,
    release: str = "fr",
    namespace: str = "flowrun-system",
) -> list[dict[str, Any]]:
    """`helm template` as a list of manifests (empty documents dropped)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for f in values_files:
        args += ["-f", str(f)]
    out = run_helm(helm, *args, *set_args(values)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def of_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def operator_deployment(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The operator's Deployment (not the optional dask-kubernetes-operator subchart's)."""
    found = [
        d
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/name") == "flowrun-operator"
    ]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


def operator_container(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    pod = operator_deployment(docs)["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == "operator"]
    return container


def rules_of(role: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples of a Role or ClusterRole."""
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    yield group, resource, verb


# Every rule the chart grants the operator in cluster-wide mode with default values, pinned: a new
# grant must be added here on purpose. Where each is shown needed: test_rbac_needed.py (ablations)
# and test_install.py (the whole set is sufficient); the rest is explained in docs/install.md.
OPERATOR_RULES = frozenset(
    {
        ("flowrun.dev", "flowruns", "get"),
        ("flowrun.dev", "flowruns", "list"),
        ("flowrun.dev", "flowruns", "watch"),
        ("flowrun.dev", "flowruns", "patch"),
        ("flowrun.dev", "flowruns/status", "patch"),
        ("flowrun.dev", "flowruns/finalizers", "update"),
        ("flowrun.dev", "flowtemplates", "get"),
        ("", "events", "create"),
        ("", "events", "list"),
        ("", "configmaps", "get"),
        ("", "configmaps", "create"),
        ("", "configmaps", "patch"),
        ("kubernetes.dask.org", "daskclusters", "get"),
        ("kubernetes.dask.org", "daskclusters", "list"),
        ("kubernetes.dask.org", "daskclusters", "create"),
        ("kubernetes.dask.org", "daskclusters", "patch"),
        ("kubernetes.dask.org", "daskclusters", "delete"),
        ("kubernetes.dask.org", "daskworkergroups", "get"),
        ("kubernetes.dask.org", "daskworkergroups", "list"),
        ("kubernetes.dask.org", "daskworkergroups", "create"),
        ("kubernetes.dask.org", "daskworkergroups", "patch"),
        ("kubernetes.dask.org", "daskautoscalers", "create"),
        ("kubernetes.dask.org", "daskautoscalers", "delete"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "services", "get"),
        ("", "services", "list"),
        ("batch", "jobs", "get"),
        ("batch", "jobs", "create"),
        ("batch", "jobs", "delete"),
        ("", "serviceaccounts", "create"),
        ("", "serviceaccounts", "delete"),
        ("rbac.authorization.k8s.io", "roles", "create"),
        ("rbac.authorization.k8s.io", "roles", "delete"),
        ("rbac.authorization.k8s.io", "rolebindings", "create"),
        ("rbac.authorization.k8s.io", "rolebindings", "delete"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    }
)


def operator_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Roles bound to the operator's ServiceAccount (not the aggregated roles for people)."""
    bound = {
        (b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in of_kind(docs, "ClusterRoleBinding") + of_kind(docs, "RoleBinding")
    }
    return [
        r
        for r in of_kind(docs, "ClusterRole") + of_kind(docs, "Role")
        if (r["kind"], r["metadata"]["name"]) in bound
    ]


def rules_from(triples: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """PolicyRules granting exactly `triples`, one rule per (apiGroup, resource)."""
    verbs: dict[tuple[str, str], list[str]] = {}
    for group, resource, verb in sorted(triples):
        verbs.setdefault((group, resource), []).append(verb)
    return [{"apiGroups": [g], "resources": [r], "verbs": v} for (g, r), v in sorted(verbs.items())]
