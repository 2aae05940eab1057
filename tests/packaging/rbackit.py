"""Operators under restricted identities (packaging tests): a ServiceAccount bound to the chart's
cluster-wide rules minus one, and given it back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chartkit import rules_from
from opkit import unique

Rule = tuple[str, str, str]  # (API group, resource, verb)
# Plus reading namespaces, unrelated to every rule under test: the operator watches one
# namespace here (so it never meets other tests' FlowRuns), and without it kopf retries listing
# namespaces for about a minute before using the given name.
READ_NAMESPACES = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}


class Accounts:
    """ServiceAccounts bound to the chart's rules minus one (None: all of them): calling makes
    one and gives its kubeconfig; `grant_all` gives the last one the rule back."""

    def __init__(
        self,
        kubectl: Any,
        namespaces: Callable[..., str],
        sa_kubeconfig: Callable[[str, str], Path],
        chart_rules: frozenset[Rule],
    ) -> None:
        self.kubectl, self.namespaces, self.sa_kubeconfig = kubectl, namespaces, sa_kubeconfig
        self.chart_rules = chart_rules
        self.made: list[tuple[str, str]] = []  # (ClusterRole and binding name, namespace)

    def __call__(self, removed: Rule | None) -> Path:
        ns = self.namespaces("fr-pkg-abl")
        name = unique("fr-ablated")
        self.made.append((name, ns))
        self.kubectl("create", "serviceaccount", "operator", "-n", ns)
        self._apply(name, ns, self.chart_rules - {removed} if removed else self.chart_rules)
        return self.sa_kubeconfig(ns, "operator")

    def grant_all(self) -> None:
        self._apply(*self.made[-1], self.chart_rules)

    def _apply(self, name: str, ns: str, rules: frozenset[Rule]) -> None:
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [*rules_from(rules), READ_NAMESPACES],
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns}],
        }  # fmt: skip
        items = {"kind": "List", "apiVersion": "v1", "items": [role, binding]}
        self.kubectl("apply", "-f", "-", input=json.dumps(items))

    def delete_all(self) -> None:
        for name, _ in self.made:
            self.kubectl(
                "delete", "clusterrolebinding,clusterrole", name, "--ignore-not-found", check=False
            )
