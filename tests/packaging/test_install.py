"""The chart on the real dev control plane: dry-run apply, install, and the operator run under the
chart's own ServiceAccount, so that RBAC is enforced by the API server exactly as in a cluster.

Pods never run here (no kubelet), so the operator runs as a local subprocess whose kubeconfig
holds a TokenRequest token of the release's ServiceAccount: what the pod would have.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CHART, SCENARIOS, one
from healthkit import HealthCheck
from opkit import (
    Operator,
    assert_no_forbidden,
    can_i,
    events_of,
    finished,
    flowrun_manifest,
    forbidden,
    local_spec,
    wait_for,
)

from support.flowruns import crd_established

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

SECRET_VALUE = "s3cr3t-" + uuid.uuid4().hex
# The prometheus-operator's CRD is not in this cluster: a stand-in with the schema of the fields
# the chart sets, so that the dry run checks our ServiceMonitor's apiVersion, kind and field types.
SERVICE_MONITOR_CRD = Path(__file__).parent / "data" / "servicemonitor-crd.yaml"


@pytest.fixture(scope="module")
def service_monitor_crd(kubectl: Any) -> None:
    kubectl("apply", "--server-side", "-f", str(SERVICE_MONITOR_CRD))
    wait_for(lambda: crd_established(kubectl, "servicemonitors.monitoring.coreos.com"))


def helm_template(helm: Any, release: str, namespace: str, *args: str) -> list[dict[str, Any]]:
    out = helm("template", release, str(CHART), "--namespace", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


# --- rendered manifests, judged by the API server ---------------------------------------------


@pytest.mark.parametrize(
    "values_file", [None, *SCENARIOS], ids=["defaults", *[s.name for s in SCENARIOS]]
)
def test_rendered_manifests_pass_server_side_dry_run(
    helm: Any,
    kubectl: Any,
    namespaces: Callable[..., str],
    service_monitor_crd: None,
    values_file: Path | None,
) -> None:
    release_ns = namespaces("fr-pkg-dry")
    values_args = ["-f", str(values_file)] if values_file else []
    docs = helm_template(helm, "dry", release_ns, *values_args)
    for doc in docs:  # the scenarios' watched namespaces must exist for their Roles
        if doc["metadata"].get("namespace"):
            namespaces(name=doc["metadata"]["namespace"])
    result = kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=flowrun-dry-run",
        "--dry-run=server",
        "-f",
        "-",
        input="\n---\n".join(json.dumps(d) for d in docs),
    )
    applied = [
        line for line in result.stdout.splitlines() if "serverside-applied (server dry run)" in line
    ]
    assert len(applied) == len(docs), result.stdout


def test_operator_pod_is_admitted_by_pod_security_restricted(
    helm: Any, kubectl: Any, namespaces: Callable[..., str]
) -> None:
    ns = namespaces("fr-pkg-pss", labels=("pod-security.kubernetes.io/enforce=restricted",))
    template = one(helm_template(helm, "pss", ns), "Deployment")["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator", "namespace": ns}}
    pod["spec"] = template["spec"]
    ok = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert ok.returncode == 0, ok.stderr
    # The namespace really enforces: the same pod, one setting weaker, is refused.
    weaker = copy.deepcopy(pod)
    weaker["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(weaker), check=False
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr


# --- helm install, cluster-wide ------------------------------------------------------------------


class Release:
    def __init__(self, name: str, namespace: str, install_output: str) -> None:
        self.name = name
        self.namespace = namespace
        self.install_output = install_output
        self.service_account = f"{name}-flowrun-operator"


@pytest.fixture(scope="module")
def clusterwide(helm: Any, namespaces: Callable[..., str]) -> Iterator[Release]:
    ns = namespaces("fr-pkg-sys")
    # --take-ownership: other suites may have applied the FlowRun CRD in this control plane.
    out = helm("install", "frcw", str(CHART), "--namespace", ns, "--take-ownership").stdout
    yield Release("frcw", ns, out)
    helm("uninstall", "frcw", "--namespace", ns, check=False)


def test_helm_install_cluster_wide(clusterwide: Release, kubectl: Any, helm: Any) -> None:
    assert "STATUS: deployed" in clusterwide.install_output
    notes = clusterwide.install_output.split("NOTES:")[1]
    assert "cluster-wide" in notes
    assert "kubectl get flowruns -A" in notes
    ns, name = clusterwide.namespace, clusterwide.service_account
    deployment = kubectl.json("get", "deployment", name, "-n", ns)
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    kubectl("get", "serviceaccount", name, "-n", ns)
    kubectl("get", "service", f"{name}-metrics", "-n", ns)
    crd = kubectl.json("get", "crd", "flowruns.flowrun.dev")
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "frcw"
    releases = json.loads(helm("list", "-n", ns, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("frcw", "deployed")]


def test_aggregated_user_roles_reach_namespace_editors(clusterwide: Release, kubectl: Any) -> None:
    def aggregated() -> bool:
        edit = kubectl.json("get", "clusterrole", "edit")
        return any("flowrun.dev" in r.get("apiGroups", []) for r in edit.get("rules") or [])

    wait_for(aggregated, timeout=60, what="flowrun rules aggregated into the built-in edit role")


@pytest.fixture
def sa_operator(
    clusterwide: Release,
    sa_kubeconfig: Callable[[str, str], Path],
    tmp_path: Path,
) -> Iterator[Callable[..., Operator]]:
    """Start `flowrun operator` under the release's ServiceAccount token; stopped by PID after."""
    started: list[Operator] = []

    def start(*args: str) -> Operator:
        kubeconfig = sa_kubeconfig(clusterwide.namespace, clusterwide.service_account)
        workdir = tmp_path / f"operator-{len(started)}"
        workdir.mkdir()
        operator = Operator(kubeconfig, workdir, list(args))
        started.append(operator)
        return operator.start()

    yield start
    for operator in started:
        operator.stop()


@dataclass(frozen=True)
class EndToEnd:
    namespace: str
    runs: dict[str, dict[str, Any]]  # FlowRun name -> the object as last read
    log: str
    metrics: str


@pytest.fixture(scope="module")
def end_to_end(
    clusterwide: Release,
    kubectl: Any,
    sa_kubeconfig: Callable[[str, str], Path],
    namespaces: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> EndToEnd:
    """FlowRuns that succeed, fail, and run until cancelled, under the chart's ServiceAccount."""
    work = namespaces("fr-pkg-work")
    kubeconfig = sa_kubeconfig(clusterwide.namespace, clusterwide.service_account)
    workdir = tmp_path_factory.mktemp("e2e-operator")
    operator = Operator(kubeconfig, workdir, ["--all-namespaces", "--allow-in-process"]).start()
    try:
        ok = local_spec(
            [
                {"name": "one", "fn": "operator:add", "args": [1, 2]},
                {"name": "two", "fn": "operator:mul", "args": [{"task": "one"}, 2]},
            ],
            returnTasks=["two"],
        )
        bad = local_spec([{"name": "boom", "fn": "math:sqrt", "args": [-1]}])
        slow = local_spec([{"name": "nap", "fn": "time:sleep", "args": [300]}])
        for name, spec in (("ok", ok), ("bad", bad), ("slow", slow)):
            kubectl("apply", "-f", "-", input=flowrun_manifest(name, work, spec))
        runs = {name: finished(kubectl, operator, name, work) for name in ("ok", "bad")}

        def running() -> dict[str, Any] | None:
            obj: dict[str, Any] = kubectl.json("get", "flowrun", "slow", "-n", work)
            tasks = (obj.get("status") or {}).get("tasks") or {}
            return obj if tasks.get("nap", {}).get("state") == "Running" else None

        runs["running"] = wait_for(running, timeout=60, what="the slow FlowRun's task to run")
        cancel = '{"spec":{"cancel":true}}'
        kubectl("patch", "flowrun", "slow", "-n", work, "--type=merge", "-p", cancel)
        runs["cancelled"] = finished(kubectl, operator, "slow", work)
        wait_for(lambda: events_of(kubectl, "bad", work), what="Events of the failed FlowRun")
        return EndToEnd(work, runs, operator.log_text(), operator.metrics())
    finally:
        operator.stop()


def test_operator_under_the_charts_service_account_runs_flowruns(
    end_to_end: EndToEnd, kubectl: Any
) -> None:
    ok, bad = end_to_end.runs["ok"], end_to_end.runs["bad"]
    # flowruns list/watch/patch and flowruns/status patch: the runs went through, status written.
    assert ok["status"]["phase"] == "Succeeded", ok["status"]
    assert ok["status"]["results"] == {"two": 6}
    assert ok["status"]["observedGeneration"] == ok["metadata"]["generation"]
    assert bad["status"]["phase"] == "Failed", bad["status"]
    assert end_to_end.runs["cancelled"]["status"]["phase"] == "Cancelled"
    # events create: the operator's Events are there, posted with the ServiceAccount's token.
    assert events_of(kubectl, "bad", end_to_end.namespace)
    assert 'flowrun_flowruns{phase="Succeeded"}' in end_to_end.metrics
    assert "flowrun_run_duration_seconds_count" in end_to_end.metrics
    assert_no_forbidden(end_to_end.log, namespaces=(end_to_end.namespace,))


def test_argo_cd_health_of_real_flowruns(end_to_end: EndToEnd) -> None:
    health = HealthCheck()
    assert health(end_to_end.runs["ok"])["status"] == "Healthy"
    assert health(end_to_end.runs["bad"])["status"] == "Degraded"
    assert health(end_to_end.runs["running"])["status"] == "Progressing"


def test_a_cancelled_flowrun_reads_suspended_in_argo_cd(end_to_end: EndToEnd) -> None:
    cancelled = end_to_end.runs["cancelled"]
    assert cancelled["status"]["observedGeneration"] == cancelled["metadata"]["generation"]
    assert HealthCheck()(cancelled)["status"] == "Suspended"


def test_parameters_from_reach_the_runner_and_never_the_operator(
    kubectl: Any, sa_operator: Callable[..., Operator], namespaces: Callable[..., str]
) -> None:
    """The chart's operator, on the product path, creates the runner with the Secret as a
    secretKeyRef env (the kubelet reads it, tests/node show the value arrives) and reads no
    Secret itself: it may not."""
    work = namespaces("fr-pkg-secret")
    kubectl(
        "create", "secret", "generic", "creds", "-n", work, f"--from-literal=token={SECRET_VALUE}"
    )
    operator = sa_operator("--all-namespaces", "--default-image=registry.invalid/flows:1")
    spec = local_spec(
        [{"name": "secret_len", "fn": "builtins:len", "args": [{"parameter": "token"}]}],
        executor={"type": "Local"},
        flow={"parameters": [{"name": "token", "required": True}]},
        parametersFrom=[{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
        returnTasks=["secret_len"],
    )
    kubectl("apply", "-f", "-", input=flowrun_manifest("withsecret", work, spec))

    def runner_job() -> dict[str, Any] | None:
        jobs = kubectl.json("get", "jobs", "-n", work)["items"]
        return jobs[0] if jobs else None

    job = wait_for(runner_job, timeout=60, what="the runner Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert refs == [{"name": "creds", "key": "token"}]
    assert SECRET_VALUE not in json.dumps(job)

    def phase() -> str | None:
        found = kubectl.json("get", "flowrun", "withsecret", "-n", work)
        return (found.get("status") or {}).get("phase")

    # The Job may be there before the status writer's next patch says Pending.
    assert wait_for(phase, timeout=60, what="the run's phase") == "Pending"
    assert_no_forbidden(operator.log_text(), namespaces=(work,))


def test_the_charts_service_account_is_denied_everything_else(
    clusterwide: Release,
    kubectl: Any,
    sa_kubeconfig: Callable[[str, str], Path],
    namespaces: Callable[..., str],
    dask_crds: None,
) -> None:
    kubeconfig = sa_kubeconfig(clusterwide.namespace, clusterwide.service_account)
    ns = namespaces("fr-pkg-deny")
    kubectl("create", "secret", "generic", "other", "-n", ns, "--from-literal=k=v")
    kubectl(
        "apply",
        "-f",
        "-",
        input=flowrun_manifest(
            "keep", ns, local_spec([{"name": "a", "fn": "operator:neg", "args": [1]}])
        ),
    )
    # Really denied by the API server (server-side dry runs: nothing changes if one were allowed).
    assert forbidden(kubectl, kubeconfig, "delete", "namespace", ns, "--dry-run=server")
    assert forbidden(kubectl, kubeconfig, "get", "secrets", "-n", ns)  # list: no enumeration
    assert forbidden(kubectl, kubeconfig, "delete", "flowrun", "keep", "-n", ns, "--dry-run=server")
    # ConfigMaps: create and patch only (big runs' live status), never read or deleted.
    assert forbidden(kubectl, kubeconfig, "get", "configmaps", "-n", ns)
    assert forbidden(kubectl, kubeconfig, "delete", "configmap", "x", "-n", ns, "--dry-run=server")
    assert forbidden(
        kubectl, kubeconfig, "run", "x", "-n", ns, "--image=busybox", "--dry-run=server"
    )
    assert forbidden(
        kubectl, kubeconfig, "label", "crd", "flowruns.flowrun.dev", "x=y", "--dry-run=server"
    )
    assert forbidden(kubectl, kubeconfig, "get", "namespaces")
    # ...and what it does need is granted (the static view of the same RBAC).
    assert forbidden(kubectl, kubeconfig, "get", "secret", "other", "-n", ns)
    assert can_i(kubectl, kubeconfig, "patch", "flowruns.flowrun.dev/status", "-n", ns)
    assert can_i(kubectl, kubeconfig, "create", "daskclusters.kubernetes.dask.org", "-n", ns)
    assert not can_i(kubectl, kubeconfig, "update", "flowruns.flowrun.dev", "-n", ns)
    assert not can_i(kubectl, kubeconfig, "watch", "secrets", "-n", ns)
    assert not can_i(kubectl, kubeconfig, "create", "pods/portforward", "-n", ns)
    # Events: posted, and listed (a runner Job's FailedCreate), never watched, changed or deleted.
    assert can_i(kubectl, kubeconfig, "list", "events", "-n", ns)
    assert not can_i(kubectl, kubeconfig, "watch", "events", "-n", ns)
    assert not can_i(kubectl, kubeconfig, "delete", "events", "-n", ns)


def test_kubernetes_provider_under_the_charts_service_account(
    kubectl: Any,
    sa_operator: Callable[..., Operator],
    namespaces: Callable[..., str],
    dask_crds: None,
) -> None:
    """The DaskCluster rules, without --allow-in-process: create it (with an ownerReference that
    blocks owner deletion, which needs update on flowruns/finalizers), find it, delete it. No Dask
    operator and no kubelet run here, so the run fails after its startup timeout, cleanly."""
    work = namespaces("fr-pkg-k8s")
    operator = sa_operator("--all-namespaces")
    spec = {
        "flow": {"tasks": [{"name": "one", "fn": "operator:add", "args": [1, 2]}]},
        "executor": {
            "type": "Dask",
            "dask": {
                "cluster": "Kubernetes",
                "image": "registry.invalid/flows:1",  # there is no default image any more
                "workers": 1,
                "startupTimeoutSeconds": 5,
            },
        },
    }
    kubectl("apply", "-f", "-", input=flowrun_manifest("kube", work, spec))
    uid = kubectl.json("get", "flowrun", "kube", "-n", work)["metadata"]["uid"]

    def owned_cluster() -> dict[str, Any] | None:
        items = kubectl.json("get", "daskclusters.kubernetes.dask.org", "-n", work)["items"]
        owned = [
            c
            for c in items
            for ref in c["metadata"].get("ownerReferences", [])
            if ref["uid"] == uid
        ]
        return owned[0] if owned else None

    try:
        cluster = wait_for(owned_cluster, timeout=60, what="the FlowRun's DaskCluster")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\noperator log:\n{operator.log_text()[-4000:]}") from None
    [ref] = cluster["metadata"]["ownerReferences"]
    assert ref["blockOwnerDeletion"] is True
    obj = finished(kubectl, operator, "kube", work)
    assert obj["status"]["phase"] == "Failed", obj["status"]
    wait_for(lambda: owned_cluster() is None, timeout=60, what="the DaskCluster to be deleted")
    assert_no_forbidden(operator.log_text(), namespaces=(work,))


# --- namespaced mode -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def namespaced(helm: Any, namespaces: Callable[..., str]) -> Iterator[tuple[Release, list[str]]]:
    ns = namespaces("fr-pkg-nsys")
    watched = [namespaces("fr-pkg-wa"), namespaces("fr-pkg-wb")]
    out = helm(
        "install",
        "frns",
        str(CHART),
        "--namespace",
        ns,
        "--set",
        "watchNamespaces={" + ",".join(watched) + "}",
        "--set",
        "crds.install=false",
    ).stdout
    yield Release("frns", ns, out), watched
    helm("uninstall", "frns", "--namespace", ns, check=False)


def test_namespaced_install_creates_roles_only_in_watched_namespaces(
    namespaced: tuple[Release, list[str]], kubectl: Any
) -> None:
    release, watched = namespaced
    notes = release.install_output.split("NOTES:")[1]
    assert ", ".join(watched) in notes
    roles = kubectl.json("get", "roles", "-A", "-l", "app.kubernetes.io/instance=frns")["items"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(watched)
    cluster_roles = kubectl.json("get", "clusterroles", "-l", "app.kubernetes.io/instance=frns")[
        "items"
    ]
    # Only CRD discovery for kopf, and the aggregated roles for people (bound to nobody here).
    assert sorted(r["metadata"]["name"] for r in cluster_roles) == [
        "frns-flowrun-operator-crd-watch",
        "frns-flowrun-operator-edit",
        "frns-flowrun-operator-view",
    ]


def test_namespaced_operator_leaves_other_namespaces_alone(
    namespaced: tuple[Release, list[str]],
    kubectl: Any,
    sa_kubeconfig: Callable[[str, str], Path],
    namespaces: Callable[..., str],
    tmp_path: Path,
) -> None:
    release, watched = namespaced
    kubeconfig = sa_kubeconfig(release.namespace, release.service_account)
    other = namespaces("fr-pkg-other")
    kubectl("create", "secret", "generic", "theirs", "-n", other, "--from-literal=k=v")
    kubectl("create", "secret", "generic", "ours", "-n", watched[0], "--from-literal=k=v")
    spec = local_spec([{"name": "one", "fn": "operator:add", "args": [2, 3]}], returnTasks=["one"])
    # The unwatched FlowRun first: by the time the watched one is done, it has had every chance.
    kubectl("apply", "-f", "-", input=flowrun_manifest("theirs", other, spec))
    args = [f"--namespace={ns}" for ns in watched]
    operator = Operator(kubeconfig, tmp_path, [*args, "--allow-in-process"]).start()
    try:
        for ns in watched:
            kubectl("apply", "-f", "-", input=flowrun_manifest("ours", ns, spec))
        for ns in watched:
            obj = finished(kubectl, operator, "ours", ns)
            assert obj["status"]["phase"] == "Succeeded", obj["status"]
            assert obj["status"]["results"] == {"one": 5}
        theirs = kubectl.json("get", "flowrun", "theirs", "-n", other)
        assert "status" not in theirs
        assert not theirs["metadata"].get("finalizers")
        assert not [
            a for a in theirs["metadata"].get("annotations") or {} if "flowrun" in a or "kopf" in a
        ]
        # kopf may not list namespaces in this mode: it falls back to the given names, as logged.
        assert_no_forbidden(
            operator.log_text(), namespaces=(*watched, other), allowed=('"namespaces"',)
        )
    finally:
        operator.stop()
    # Denied outside the watched namespaces, by the API server.
    assert forbidden(kubectl, kubeconfig, "get", "secret", "theirs", "-n", other)
    assert forbidden(kubectl, kubeconfig, "get", "flowruns", "-n", other)
    assert forbidden(kubectl, kubeconfig, "get", "flowruns", "-A")
    assert forbidden(kubectl, kubeconfig, "delete", "namespace", other, "--dry-run=server")
    # ...and inside them too: runners get parametersFrom from the kubelet, not the operator.
    assert forbidden(kubectl, kubeconfig, "get", "secret", "ours", "-n", watched[0])
    assert forbidden(kubectl, kubeconfig, "get", "secrets", "-n", watched[0])


# --- upgrade and uninstall (last: this release takes the CRD over from the others) -------------


def test_upgrade_upgrades_the_crd_and_uninstall_keeps_it(
    helm: Any, kubectl: Any, namespaces: Callable[..., str], flowrun_crd: None
) -> None:
    ns = namespaces("fr-pkg-up")
    helm("install", "frup", str(CHART), "--namespace", ns, "--take-ownership")
    column = "/spec/versions/0/additionalPrinterColumns/0/name"
    drift = [{"op": "replace", "path": column, "value": "Drifted"}]
    kubectl("patch", "crd", "flowruns.flowrun.dev", "--type=json", "-p", json.dumps(drift))
    helm(
        "upgrade",
        "frup",
        str(CHART),
        "--namespace",
        ns,
        "--reuse-values",
        "--set",
        "operator.maxConcurrentRuns=2",
    )
    args = kubectl.json("get", "deployment", "frup-flowrun-operator", "-n", ns)["spec"]["template"][
        "spec"
    ]["containers"][0]["args"]
    assert "--max-concurrent-runs=2" in args
    crd = kubectl.json("get", "crd", "flowruns.flowrun.dev")
    # The CRD is a template: the upgrade re-applied it (revision 2), undoing the drift.
    assert crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["name"] == "Phase"
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "frup"
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    history = json.loads(helm("history", "frup", "-n", ns, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]

    helm("uninstall", "frup", "--namespace", ns)
    kubectl("get", "crd", "flowruns.flowrun.dev")  # kept: deleting it would delete every FlowRun
    kubectl("get", "crd", "flowtemplates.flowrun.dev")  # and every FlowTemplate
    gone = kubectl("get", "clusterrole", "frup-flowrun-operator", check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr
