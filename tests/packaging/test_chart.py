"""The Helm chart, rendered offline by the real helm: lint, schema, CRD source, Deployment, RBAC.

What only an API server can decide (dry-run apply, install, RBAC enforcement) is in
test_install.py; these tests pin what the chart renders and that the operator accepts it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import dask_kubernetes
import pytest
import yaml
from chartkit import (
    CHART,
    CRD_COPY,
    CRD_SOURCE,
    OPERATOR_RULES,
    SCENARIOS,
    of_kind,
    one,
    operator_container,
    operator_roles,
    render,
    rules_of,
    run_helm,
)

from flowrun.api.base import QUANTITY_PATTERN
from flowrun.controller import cli as operator_cli
from flowrun.controller import settings as settings_mod

SCENARIO_IDS = [p.name for p in SCENARIOS]
CHART_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance")


def parse_operator_args(container: dict[str, Any]) -> settings_mod.OperatorSettings:
    """Parse the container's args with the operator's own parser, as `flowrun operator` does."""
    assert container["command"] == ["flowrun", "operator"]
    parser = argparse.ArgumentParser(exit_on_error=False)
    operator_cli.configure(parser)
    return settings_mod.from_args(parser.parse_args(container["args"]))


# --- lint and template -------------------------------------------------------------------------


def test_there_are_the_scenarios() -> None:
    assert {
        "cluster-wide-values.yaml",
        "namespaced-values.yaml",
        "metrics-values.yaml",
        "dask-operator-values.yaml",
    } <= set(SCENARIO_IDS)


@pytest.mark.parametrize("values_file", [None, *SCENARIOS], ids=["defaults", *SCENARIO_IDS])
def test_lint_strict_and_template(helm_bin: Path, values_file: Path | None) -> None:
    files = [values_file] if values_file else []
    args = [a for f in files for a in ("-f", str(f))]
    lint = run_helm(helm_bin, "lint", "--strict", str(CHART), *args)
    assert "0 chart(s) failed" in lint.stdout
    docs = render(helm_bin, values_files=files)
    assert operator_container(docs)
    # The vendored dask-kubernetes-operator subchart labels its objects its own way.
    for doc in [d for d in docs if "dask-kubernetes-operator" not in d["metadata"]["name"]]:
        assert doc["metadata"].get("name"), doc
        labels = doc["metadata"].get("labels") or {}
        assert all(k in labels for k in CHART_LABELS), (doc["kind"], labels)
        if doc["kind"] in {"ClusterRole", "ClusterRoleBinding"}:  # cluster-scoped: per release
            assert doc["metadata"]["name"].startswith("fr-"), doc["metadata"]["name"]


# --- values schema -----------------------------------------------------------------------------


def test_schema_forbids_unknown_keys_at_every_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}")

    walk(schema, "values")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("bogus", "1"),
        ("rbac.bogus", "1"),
        ("operator.allowInprocess", "true"),  # a typo must not silently keep the default
        ("watchNamespaces[0]", "Not_A_Namespace"),
        ("operator.maxConcurrentRuns", "0"),
        ("image.pullPolicy", "Sometimes"),
        ("runner.resources.requests.gpu", "1"),
        ("operator.liveStatus.minTasks", "-1"),
        ("operator.liveStatus.refreshSeconds", "0"),
        ("runner.resources.limits.memory", "1GB"),
        ("runner.resources.requests.cpu", "-1"),
        ("resources.limits.memory", "lots"),
    ],
)
def test_schema_refuses_bad_values(helm_bin: Path, key: str, value: str) -> None:
    result = run_helm(
        helm_bin, "template", "fr", str(CHART), "--set", f"{key}={value}", check=False
    )
    assert result.returncode != 0
    assert "schema" in result.stderr


def test_every_quantity_in_the_schema_is_the_crds_quantity() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for member in node.get("anyOf", []):
                if member.get("type") == "string":
                    assert member.get("pattern") == QUANTITY_PATTERN, path
                    found.append(path)
            for key, child in node.items():
                walk(child, f"{path}.{key}")

    walk(schema["properties"]["runner"], "runner")
    walk(schema["properties"]["resources"], "resources")
    assert len(found) == 12, found


def test_every_default_value_is_described_by_the_schema(helm_bin: Path) -> None:
    # helm validates the defaults too: rendering with no values is the proof; a key missing from
    # the schema's properties would be refused (additionalProperties: false).
    assert render(helm_bin)


# --- the CRD: one source of truth --------------------------------------------------------------


def test_chart_crd_copy_is_identical_to_crds_dir() -> None:
    assert CRD_COPY.read_bytes() == CRD_SOURCE.read_bytes(), (
        "helm/flowrun-operator/files/crds/flowrun.yaml differs from crds/flowrun.yaml: "
        "run `cp crds/flowrun.yaml helm/flowrun-operator/files/crds/flowrun.yaml`"
    )


def test_rendered_crd_and_policy_are_the_source_documents(helm_bin: Path) -> None:
    rendered = render(helm_bin)
    sources = list(yaml.safe_load_all(CRD_SOURCE.read_text()))
    assert [(s["kind"], s["metadata"]["name"]) for s in sources] == [
        ("CustomResourceDefinition", "flowruns.flowrun.dev"),
        ("ValidatingAdmissionPolicy", "flowrun-spec-immutable.flowrun.dev"),
        ("ValidatingAdmissionPolicyBinding", "flowrun-spec-immutable.flowrun.dev"),
        ("ValidatingAdmissionPolicy", "flowrun-big-inline-flow.flowrun.dev"),
        ("ValidatingAdmissionPolicyBinding", "flowrun-big-inline-flow.flowrun.dev"),
        ("CustomResourceDefinition", "flowtemplates.flowrun.dev"),
    ]
    for source in sources:
        [doc] = [
            d
            for d in of_kind(rendered, source["kind"])
            if d["metadata"]["name"] == source["metadata"]["name"]
        ]
        meta = doc["metadata"]
        assert meta["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert all(k in meta["labels"] for k in CHART_LABELS)
        meta.pop("annotations")
        meta.pop("labels")
        assert doc == source


def test_crd_install_and_keep_toggles(helm_bin: Path) -> None:
    without = render(helm_bin, values={"crds.install": "false"})
    assert not of_kind(without, "CustomResourceDefinition")
    assert not of_kind(without, "ValidatingAdmissionPolicy")
    crds = of_kind(render(helm_bin, values={"crds.keep": "false"}), "CustomResourceDefinition")
    assert len(crds) == 2  # FlowRun and FlowTemplate
    for crd in crds:
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})


# --- the Deployment ----------------------------------------------------------------------------


def test_deployment_is_one_replica_recreate_and_hardened(helm_bin: Path) -> None:
    docs = render(helm_bin)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(docs)
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    # Only emptyDir volumes (Pod Security "restricted" allows no hostPath and friends).
    assert all(set(v) == {"name", "emptyDir"} for v in pod["volumes"])
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


def test_probes_hit_kopfs_liveness_endpoint_on_the_port_the_operator_serves(
    helm_bin: Path,
) -> None:
    container = operator_container(render(helm_bin, values={"operator.livenessPort": "8181"}))
    settings = parse_operator_args(container)
    assert settings.liveness_port == 8181
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["liveness"] == 8181
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "liveness"}


def test_in_process_execution_is_off_by_default(helm_bin: Path) -> None:
    assert parse_operator_args(operator_container(render(helm_bin))).allow_in_process is False
    on = operator_container(render(helm_bin, values={"operator.allowInProcess": "true"}))
    assert parse_operator_args(on).allow_in_process is True


def test_operator_args_are_accepted_by_the_operator(helm_bin: Path) -> None:
    values = {
        "operator.maxConcurrentRuns": "3",
        "operator.defaultImage": "ghcr.io/acme/flows:2",
        "operator.statusInterval": "2.5",
        "operator.liveStatus.minTasks": "200",
        "operator.liveStatus.refreshSeconds": "15",
        "metrics.port": "9191",
    }
    settings = parse_operator_args(operator_container(render(helm_bin, values=values)))
    assert settings.clusterwide
    assert settings.max_concurrent_runs == 3
    assert settings.default_image == "ghcr.io/acme/flows:2"
    assert settings.status_interval == 2.5
    assert (settings.live_status.min_tasks, settings.live_status.refresh) == (200, 15.0)
    assert settings.metrics_port == 9191
    assert settings.peering is False  # standalone: one replica, no KopfPeering objects needed


def test_the_default_dask_image_is_the_operators_own_tagged_image(helm_bin: Path) -> None:
    """Not a public `:latest` image (unreachable offline, and pulled on every start)."""
    container = operator_container(render(helm_bin))
    assert parse_operator_args(container).default_image == container["image"]
    assert not container["image"].endswith(":latest")


def test_runner_resources_reach_the_operator(helm_bin: Path, tmp_path: Path) -> None:
    default = parse_operator_args(operator_container(render(helm_bin)))
    assert default.runner_resources == {"requests": {"cpu": "50m", "memory": "256Mi"}}
    values = tmp_path / "runner.yaml"
    values.write_text(
        "runner:\n  resources:\n    requests: {cpu: '1', memory: 1Gi}\n    limits: {memory: 2Gi}\n"
    )
    given = parse_operator_args(operator_container(render(helm_bin, values_files=[values])))
    assert given.runner_resources == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }
    values.write_text("runner:\n  resources: null\n")  # Helm merges `{}` with the default
    none = parse_operator_args(operator_container(render(helm_bin, values_files=[values])))
    assert none.runner_resources == {}


def test_namespaced_mode_passes_the_namespaces_to_the_operator(helm_bin: Path) -> None:
    docs = render(helm_bin, values={"watchNamespaces": "{team-a,team-b}"})
    settings = parse_operator_args(operator_container(docs))
    assert settings.namespaces == ("team-a", "team-b")
    assert not settings.clusterwide


def test_image_reference(helm_bin: Path) -> None:
    default = operator_container(render(helm_bin))["image"]
    assert default.endswith(":" + yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])
    digest = "sha256:" + "a" * 64
    pinned = operator_container(render(helm_bin, values={"image.digest": digest}))["image"]
    assert pinned.endswith("@" + digest)


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_service_and_service_monitor(helm_bin: Path) -> None:
    docs = render(helm_bin, values_files=[CHART / "ci" / "metrics-values.yaml"])
    container = operator_container(docs)
    assert parse_operator_args(container).metrics_port == 9090
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = one(docs, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_metrics_off_means_no_port_and_no_service(helm_bin: Path) -> None:
    docs = render(helm_bin, values={"metrics.enabled": "false"})
    assert parse_operator_args(operator_container(docs)).metrics_port is None
    assert not of_kind(docs, "Service")
    assert not of_kind(docs, "ServiceMonitor")


# --- RBAC, statically: the shape of least privilege ---------------------------------------------

FORBIDDEN_EVERYWHERE = {
    ("", "secrets", "get"),  # parametersFrom reach runners as secretKeyRef env, never the operator
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
    ("", "namespaces", "delete"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "update"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "patch"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "delete"),
}


@pytest.mark.parametrize("values_file", SCENARIOS, ids=SCENARIO_IDS)
def test_no_wildcards_and_nothing_forbidden(helm_bin: Path, values_file: Path) -> None:
    docs = render(helm_bin, values_files=[values_file])
    ours = [
        r
        for r in of_kind(docs, "ClusterRole") + of_kind(docs, "Role")
        if (r["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "flowrun-operator"
    ]
    assert ours
    for role in ours:
        triples = set(rules_of(role))
        assert not any("*" in t for t in triples), role["metadata"]["name"]
        assert not triples & FORBIDDEN_EVERYWHERE, role["metadata"]["name"]


def test_cluster_wide_grants_exactly_the_pinned_rules(helm_bin: Path) -> None:
    docs = render(helm_bin)
    granted = {t for r in operator_roles(docs) for t in rules_of(r)}
    assert granted == OPERATOR_RULES


def test_namespaced_roles_grant_the_same_rules_minus_cluster_scope(helm_bin: Path) -> None:
    docs = render(helm_bin, values={"watchNamespaces": "{a}"})
    [role] = of_kind(docs, "Role")
    cluster_scoped = {t for t in OPERATOR_RULES if t[0] == "apiextensions.k8s.io"}
    assert set(rules_of(role)) == OPERATOR_RULES - cluster_scoped


def test_cluster_wide_mode_uses_cluster_roles_only(helm_bin: Path) -> None:
    docs = render(helm_bin)
    assert not of_kind(docs, "Role")
    assert not of_kind(docs, "RoleBinding")
    names = {r["metadata"]["name"] for r in operator_roles(docs)}
    assert names == {
        "fr-flowrun-operator",
        "fr-flowrun-operator-crd-watch",
    }


def test_namespaced_mode_grants_only_in_watched_namespaces(helm_bin: Path) -> None:
    docs = render(helm_bin, values_files=[CHART / "ci" / "namespaced-values.yaml"])
    roles = of_kind(docs, "Role")
    assert {r["metadata"]["namespace"] for r in roles} == {"team-a", "team-b"}
    assert {b["metadata"]["namespace"] for b in of_kind(docs, "RoleBinding")} == {
        "team-a",
        "team-b",
    }
    assert not [t for t in rules_of(roles[0]) if t[1] == "secrets"]
    # The only cluster-scoped grant to the operator: read-only CRD discovery for kopf.
    cluster_rules = {
        t for r in operator_roles(docs) if r["kind"] == "ClusterRole" for t in rules_of(r)
    }
    assert cluster_rules == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    }
    off = render(
        helm_bin,
        values_files=[CHART / "ci" / "namespaced-values.yaml"],
        values={"rbac.watchCRDs": "false"},
    )
    assert not [r for r in operator_roles(off) if r["kind"] == "ClusterRole"]


def test_the_operator_may_read_no_secret_in_any_mode(helm_bin: Path) -> None:
    for values in ({}, {"watchNamespaces": "{a}"}):
        docs = render(helm_bin, values=values)
        for role in operator_roles(docs):
            assert not [t for t in rules_of(role) if t[1] == "secrets"]
    refused = run_helm(helm_bin, "template", "fr", str(CHART), "--set", "rbac.readSecrets=true",
                       check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "readSecrets" in refused.stderr


def test_user_roles_aggregate_into_builtin_roles(helm_bin: Path) -> None:
    docs = render(helm_bin)
    by_name = {r["metadata"]["name"]: r for r in of_kind(docs, "ClusterRole")}
    edit, view = by_name["fr-flowrun-operator-edit"], by_name["fr-flowrun-operator-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert ("flowrun.dev", "flowruns/status", "patch") not in set(rules_of(edit))
    assert {t[2] for t in rules_of(view)} == {"get", "list", "watch"}
    assert edit not in operator_roles(docs)
    for kind in ("flowruns", "flowtemplates"):  # people define flows once, and run them
        assert ("flowrun.dev", kind, "create") in set(rules_of(edit))
        assert ("flowrun.dev", kind, "list") in set(rules_of(view))


def test_rbac_create_false_renders_no_rbac(helm_bin: Path) -> None:
    docs = render(helm_bin, values={"rbac.create": "false"})
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        assert not of_kind(docs, kind)


# --- the optional dask-kubernetes-operator subchart --------------------------------------------

VENDORED = CHART / "charts" / "dask-kubernetes-operator"
WHEEL_CHART = (
    Path(dask_kubernetes.__file__).parent
    / "operator"
    / "deployment"
    / "helm"
    / "dask-kubernetes-operator"
)


def test_vendored_dask_operator_chart_is_the_installed_dask_kubernetes_one() -> None:
    """The vendored subchart is the chart shipped in the dask-kubernetes wheel this operator runs
    with, only with chartpress' placeholders set to that release. To re-vendor after an upgrade:
    copy the wheel's operator/deployment/helm/dask-kubernetes-operator over charts/ and set the
    version, appVersion and image tag to the new release."""
    version = importlib.metadata.version("dask-kubernetes")
    chart = yaml.safe_load((VENDORED / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == version
    [dep] = yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    assert (dep["name"], dep["version"], dep["condition"]) == (
        "dask-kubernetes-operator",
        version,
        "daskOperator.enabled",
    )
    assert yaml.safe_load((VENDORED / "values.yaml").read_text())["image"]["tag"] == version
    upstream = {p.relative_to(WHEEL_CHART) for p in WHEEL_CHART.rglob("*") if p.is_file()}
    vendored = {p.relative_to(VENDORED) for p in VENDORED.rglob("*") if p.is_file()}
    assert vendored == upstream | {Path("LICENSE")}
    placeholders = {Path("Chart.yaml"), Path("values.yaml")}
    for rel in upstream - placeholders:
        assert (VENDORED / rel).read_bytes() == (WHEEL_CHART / rel).read_bytes(), rel


def test_dask_operator_subchart_is_off_by_default_and_on_by_value(helm_bin: Path) -> None:
    off = render(helm_bin)
    assert [d["metadata"]["name"] for d in of_kind(off, "Deployment")] == ["fr-flowrun-operator"]
    on = render(helm_bin, values_files=[CHART / "ci" / "dask-operator-values.yaml"])
    images = sorted(
        c["image"]
        for d in of_kind(on, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    )
    version = importlib.metadata.version("dask-kubernetes")
    assert f"ghcr.io/dask/dask-kubernetes-operator:{version}" in images
    with_crds = run_helm(
        helm_bin,
        "template",
        "fr",
        str(CHART),
        "--include-crds",
        "-f",
        str(CHART / "ci" / "dask-operator-values.yaml"),
    ).stdout
    assert "name: daskclusters.kubernetes.dask.org" in with_crds


def test_versions_agree() -> None:
    """The chart's appVersion (the default image tag) is the package's version, and so is the
    Dockerfile's default VERSION label."""
    version = importlib.metadata.version("flowrun-operator")
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == version
    dockerfile = (CHART.parents[1] / "Dockerfile").read_text()
    assert f"ARG VERSION={version}\n" in dockerfile
