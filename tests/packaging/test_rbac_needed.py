"""Each rule the chart grants is needed: without it, the operator is denied by the API server.

For every rule below, the operator runs under a ServiceAccount holding the chart's own rendered
cluster-wide rules minus that one (verb, resource), and does its job on a FlowRun until the API
server refuses it; the refusal (in its log, or in the FlowRun's status) is the proof.
test_install.py shows the complete set sufficient. Rules not listed here are only reached with a
running Dask operator and kubelet (pods, services, daskworkergroups; see
docs/install.md). No rule on Secrets is granted: the runner gets parametersFrom from the kubelet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chartkit import OPERATOR_RULES
from opkit import RUNNER_SPEC, Operator, flowrun_manifest, local_spec, wait_for
from rbackit import Accounts

from support.flowruns import FlowRuns
from support.leftovers import cut_short, remaining

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

LOCAL = local_spec([{"name": "one", "fn": "operator:add", "args": [1, 2]}])
WITH_SECRET = local_spec(
    [{"name": "one", "fn": "builtins:len", "args": [{"parameter": "token"}]}],
    flow={"parameters": [{"name": "token", "required": True}]},
    parametersFrom=[{"name": "token", "secretKeyRef": {"name": "creds", "key": "token"}}],
)
# A big inline flow (1,000 tasks, flowrun.runs.companion): its live status goes to a ConfigMap.
BIG = local_spec([{"name": f"t{i}", "fn": "operator:add", "args": [i, 1]} for i in range(1000)])
# A FlowRun whose flow is a FlowTemplate: the operator reads its copy (none yet), then the
# template (refused before the API server could say it does not exist).
TEMPLATE = {
    "flow": {"templateRef": {"name": "nightly"}},
    "executor": {"type": "Dask", "dask": {"cluster": "Local"}},
}
KUBERNETES = {
    "flowrun_spec": {
        "flow": {"tasks": [{"name": "one", "fn": "operator:add", "args": [1, 2]}]},
        "executor": {
            "type": "Dask",
            "dask": {
                "cluster": "Kubernetes",
                "image": "registry.invalid/flows:1",  # there is no default image
                "workers": 1,
                "startupTimeoutSeconds": 3,
            },
        },
    }
}["flowrun_spec"]

# Adaptive workers: the DaskAutoscaler is created next to the DaskCluster (before its scheduler
# is up) and deleted before it when the run ends by its startup timeout.
ADAPTIVE = {
    **KUBERNETES,
    "executor": {
        "type": "Dask",
        "dask": {
            "cluster": "Kubernetes",
            "image": "registry.invalid/flows:1",
            "adapt": {"minimum": 0, "maximum": 2},
            "startupTimeoutSeconds": 3,
        },
    },
}

# No dask-kubernetes operator runs here, so the DaskCluster is never actioned: past 15 s the
# operator touches it so that an operator that lost it looks again (flowrun.cluster.nudge).
UNACTIONED = {
    **KUBERNETES,
    "executor": {
        "type": "Dask",
        "dask": {**KUBERNETES["executor"]["dask"], "startupTimeoutSeconds": 40},
    },
}

# The runner path (no --allow-in-process): the operator creates the runner's Job and identity.
# No kubelet runs here, so the run ends by its deadline, and the runner objects are deleted.
RUNNER = RUNNER_SPEC

# A runner whose Pod the namespace's ResourceQuota refuses (`pods: 0`, made by the test): only
# the Job controller's FailedCreate Event on the Job says why, which the operator lists.
NOT_CREATED = {**RUNNER, "activeDeadlineSeconds": 60}
NO_PODS = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"},
           "spec": {"hard": {"pods": "0"}}}  # fmt: skip

# (rule taken away, the FlowRun that needs it, what the API server says when refusing)
ABLATIONS = [
    (("flowrun.dev", "flowruns", "list"), LOCAL, 'cannot list resource "flowruns"'),
    (("flowrun.dev", "flowruns", "watch"), LOCAL, 'cannot watch resource "flowruns"'),
    (("flowrun.dev", "flowruns", "patch"), LOCAL, 'cannot patch resource "flowruns"'),
    (("flowrun.dev", "flowruns/status", "patch"), LOCAL, 'cannot patch resource "flowruns/status"'),
    (("", "events", "create"), LOCAL, 'cannot create resource "events"'),
    (("", "configmaps", "create"), BIG, 'cannot create resource "configmaps"'),
    (("", "configmaps", "patch"), BIG, 'cannot patch resource "configmaps"'),
    # Held to be granted too: the runner's Role allows patch of its run's live status.
    (("", "configmaps", "patch"), RUNNER, "attempting to grant RBAC permissions not"),
    (("", "configmaps", "get"), TEMPLATE, 'cannot get resource "configmaps"'),
    # And get of its run's FlowTemplate copy.
    (("", "configmaps", "get"), RUNNER, "attempting to grant RBAC permissions not"),
    (("flowrun.dev", "flowtemplates", "get"), TEMPLATE, 'cannot get resource "flowtemplates"'),
    (("batch", "jobs", "create"), RUNNER, 'cannot create resource "jobs"'),
    (("batch", "jobs", "get"), RUNNER, 'cannot get resource "jobs"'),
    (("batch", "jobs", "delete"), RUNNER, 'cannot delete resource "jobs"'),
    (("", "serviceaccounts", "create"), RUNNER, 'cannot create resource "serviceaccounts"'),
    (("", "serviceaccounts", "delete"), RUNNER, 'cannot delete resource "serviceaccounts"'),
    (("rbac.authorization.k8s.io", "roles", "create"), RUNNER, 'cannot create resource "roles"'),
    (("rbac.authorization.k8s.io", "roles", "delete"), RUNNER, 'cannot delete resource "roles"'),
    (
        ("rbac.authorization.k8s.io", "rolebindings", "create"),
        RUNNER,
        'cannot create resource "rolebindings"',
    ),
    (
        ("rbac.authorization.k8s.io", "rolebindings", "delete"),
        RUNNER,
        'cannot delete resource "rolebindings"',
    ),
    (("", "pods", "list"), RUNNER, 'cannot list resource "pods"'),
    (("", "events", "list"), NOT_CREATED, 'cannot list resource "events"'),
    # Held only to be granted: the runner's Role allows get on its own FlowRun.
    (("flowrun.dev", "flowruns", "get"), RUNNER, "attempting to grant RBAC permissions not"),
    (
        ("flowrun.dev", "flowruns/finalizers", "update"),
        KUBERNETES,
        "cannot set blockOwnerDeletion",
    ),
    (
        ("kubernetes.dask.org", "daskclusters", "create"),
        KUBERNETES,
        'cannot create resource "daskclusters"',
    ),
    (
        ("kubernetes.dask.org", "daskclusters", "list"),
        KUBERNETES,
        'cannot list resource "daskclusters"',
    ),
    (
        ("kubernetes.dask.org", "daskclusters", "get"),
        KUBERNETES,
        'cannot get resource "daskclusters"',
    ),
    (
        ("kubernetes.dask.org", "daskclusters", "patch"),
        UNACTIONED,
        'cannot patch resource "daskclusters"',
    ),
    (
        ("kubernetes.dask.org", "daskclusters", "delete"),
        KUBERNETES,
        'cannot delete resource "daskclusters"',
    ),
    (
        ("kubernetes.dask.org", "daskautoscalers", "create"),
        ADAPTIVE,
        'cannot create resource "daskautoscalers"',
    ),
    (
        ("kubernetes.dask.org", "daskautoscalers", "delete"),
        ADAPTIVE,
        'cannot delete resource "daskautoscalers"',
    ),
]


def removed_rule(ablation: Any) -> tuple[str, str, str]:
    values = ablation.values if hasattr(ablation, "values") else ablation
    rule: tuple[str, str, str] = values[0]
    return rule


def test_every_ablation_removes_a_granted_rule() -> None:
    for ablation in ABLATIONS:
        assert removed_rule(ablation) in OPERATOR_RULES


@pytest.mark.parametrize(
    ("removed", "spec", "evidence"),
    ABLATIONS,
    ids=["/".join(filter(None, removed_rule(a))) for a in ABLATIONS],
)
def test_without_the_rule_the_operator_is_denied(
    removed: tuple[str, str, str],
    spec: dict[str, Any],
    evidence: str,
    kubectl: Any,
    namespaces: Callable[..., str],
    account_without: Accounts,
    dask_crds: None,
    flowrun_crd: None,
    tmp_path: Path,
) -> None:
    kubeconfig = account_without(removed)
    work = namespaces("fr-pkg-ablw")
    in_process = spec["executor"]["dask"]["cluster"] == "Local"
    args = [f"--namespace={work}", "--cancel-grace=1"]
    args += ["--allow-in-process"] if in_process else []
    kubectl("create", "secret", "generic", "creds", "-n", work, "--from-literal=token=t0k3n")
    if spec is NOT_CREATED:
        kubectl("apply", "-n", work, "-f", "-", input=json.dumps(NO_PODS))
    operator = Operator(kubeconfig, tmp_path, args).start()
    try:
        kubectl("apply", "-f", "-", input=flowrun_manifest("needs", work, spec))

        def denied() -> bool:
            if evidence in operator.log_text():
                return True
            obj = kubectl.json("get", "flowrun", "needs", "-n", work)
            messages = [
                c.get("message", "") for c in (obj.get("status") or {}).get("conditions", [])
            ]
            return any(evidence in m for m in messages)

        try:
            # Generous: some refusals only surface after the provider's own retries.
            wait_for(denied, timeout=90, what=f"the API server to refuse: {evidence}")
        except TimeoutError as exc:
            status = kubectl.json("get", "flowrun", "needs", "-n", work).get("status")
            raise AssertionError(
                f"{exc}\nstatus: {json.dumps(status)}\noperator log:\n{operator.log_text()[-3000:]}"
            ) from None
    finally:
        # A crippled operator may retry its refused writes while shutting down: do not wait long.
        operator.stop(grace=10)


def test_a_secret_the_operator_may_not_read_ends_the_run(
    kubectl: Any,
    namespaces: Callable[..., str],
    account_without: Accounts,
    flowrun_crd: None,
    tmp_path: Path,
) -> None:
    """RBAC's 403 is final: the run ends Failed naming the field, not Pending forever."""
    kubeconfig = account_without(("", "secrets", "get"))
    work = namespaces("fr-pkg-ablw")
    kubectl("create", "secret", "generic", "creds", "-n", work, "--from-literal=token=t0k3n")
    operator = Operator(kubeconfig, tmp_path, [f"--namespace={work}", "--allow-in-process"])
    operator.start()
    try:
        kubectl("apply", "-f", "-", input=flowrun_manifest("needs", work, WITH_SECRET))

        def final() -> dict[str, Any] | None:
            status = kubectl.json("get", "flowrun", "needs", "-n", work).get("status") or {}
            return status if status.get("phase") in {"Failed", "Succeeded"} else None

        status = wait_for(final, timeout=90, what="the FlowRun's final phase")
        assert status["phase"] == "Failed", status
        assert "spec.parametersFrom[0] (token): Secret 'creds'" in status["message"]
        stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
        assert stalled["reason"] == "SecretForbidden"
    finally:
        operator.stop(grace=10)


def test_a_restarted_operator_sweeps_a_cut_short_run_under_the_charts_rules(
    kubectl: Any,
    namespaces: Callable[..., str],
    account_without: Accounts,
    flowrun_crd: None,
    tmp_path: Path,
) -> None:
    """The sweep reads only what the chart grants (it once asked for the runner's
    ServiceAccount, which the chart may create and delete but not get: refused, so a run that
    ended while no operator ran kept its runner's Job, Pod and RBAC)."""
    kubeconfig = account_without(None)
    frs = FlowRuns(kubectl, namespaces("fr-pkg-ablw"), tmp_path)
    left = cut_short(frs, "cut-short")
    operator = Operator(kubeconfig, tmp_path, [f"--namespace={frs.namespace}"]).start()
    try:
        wait_for(lambda: not remaining(frs, left), timeout=90, what="the runner's objects deleted")
        assert "forbidden" not in operator.log_text(), operator.log_text()[-3000:]
    finally:
        operator.stop(grace=10)
