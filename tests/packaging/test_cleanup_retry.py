"""A cleanup that fails part-way is finished by a retry, never left half done.

The runner's RoleBinding, Role and ServiceAccount are deleted before its Job, whose presence marks
a cleanup not finished (a retry, or a restarted operator's sweep, looks for the Job only). Here a
delete really fails: the operator runs under the chart's rules minus `delete` on rolebindings.
Everything must stay (the Job too) until the rule is granted; then the retry deletes it all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opkit import RUNNER_SPEC, Operator, flowrun_manifest, wait_for
from rbackit import Accounts

from flowrun.cluster.base import Owner
from flowrun.controller.runner_objects import runner_name
from support.flowruns import FlowRuns
from support.leftovers import RUNNER_KINDS, remaining

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

REFUSED = 'cannot delete resource "rolebindings"'
INCOMPLETE = "cleanup of needs is incomplete"


def test_a_failed_delete_keeps_the_job_until_a_retry_deletes_everything(
    kubectl: Any,
    namespaces: Callable[..., str],
    account_without: Accounts,
    flowrun_crd: None,
    tmp_path: Path,
) -> None:
    kubeconfig = account_without(("rbac.authorization.k8s.io", "rolebindings", "delete"))
    frs = FlowRuns(kubectl, namespaces("fr-pkg-clean"), tmp_path)
    args = [f"--namespace={frs.namespace}", "--cancel-grace=1"]
    operator = Operator(kubeconfig, tmp_path, args).start()
    try:
        kubectl("apply", "-f", "-", input=flowrun_manifest("needs", frs.namespace, RUNNER_SPEC))
        uid = (frs.get("needs") or {})["metadata"]["uid"]
        left = runner_name(Owner("flowrun.dev/v1alpha1", "FlowRun", "needs", frs.namespace, uid))
        wait_for(lambda: remaining(frs, left, RUNNER_KINDS) == list(RUNNER_KINDS), timeout=60,
                 what="the runner's objects created")  # fmt: skip
        # The cleanup's attempt is over (the run's end written) once kopf is told it is
        # incomplete; a retry follows 10 s later, and fails the same way.
        wait_for(lambda: INCOMPLETE in operator.log_text(), timeout=90, what="a failed cleanup")
        log = operator.log_text()
        assert REFUSED in log, log[-3000:]
        assert frs.status("needs")["phase"] == "Failed"
        assert remaining(frs, left, RUNNER_KINDS) == list(RUNNER_KINDS)
        wait_for(lambda: operator.log_text().count(REFUSED) >= 2, timeout=60, what="a retry")
        assert remaining(frs, left, RUNNER_KINDS) == list(RUNNER_KINDS)

        account_without.grant_all()
        wait_for(lambda: not remaining(frs, left, RUNNER_KINDS), timeout=90,
                 what="the retry to delete everything")  # fmt: skip
        status = frs.status("needs")  # the run's end is kept as it was written
        assert status["phase"] == "Failed", status
        assert "DeadlineExceeded" in {c.get("reason") for c in status["conditions"]}, status
    finally:
        operator.stop(grace=10)
