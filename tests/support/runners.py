"""`flowrun runner` as a host process under a run's own identity (a ServiceAccount token), as
the kubelet would start it in the runner Job's Pod: for tests on the control plane alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flowrun.cluster import base
from flowrun.controller import runner_objects as objects
from support.flowruns import FLOWS


def runner(kubeconfig: Path, owner: base.Owner, tmp: Path, **env: str) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": os.pathsep.join([str(FLOWS), os.environ.get("PYTHONPATH", "")]),
        objects.ENV_NAMESPACE: owner.namespace,
        objects.ENV_NAME: owner.name,
        objects.ENV_UID: owner.uid,
        objects.ENV_STATUS_INTERVAL: "0.3",
        **env,
    }
    log = (tmp / f"runner-{owner.name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "flowrun.cli", "runner"],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[bytes], tmp: Path, name: str) -> int:
    try:
        return proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError((tmp / f"runner-{name}.log").read_text()[-4000:]) from None
