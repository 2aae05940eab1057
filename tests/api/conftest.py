"""Fixtures of the api tests that need the API server."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun.api import crd
from flowrun.dev.waiting import wait_for


@pytest.fixture(scope="module")
def installed(kubectl: Any) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crd.to_yaml())
    # `kubectl wait` fails at once while a new CRD has no status.conditions yet (a loaded
    # machine showed it): ask again until it answers.
    for name in ("flowruns.flowrun.dev", "flowtemplates.flowrun.dev"):
        wait_for(
            lambda name=name: kubectl("wait", "--for=condition=Established", f"crd/{name}",
                                      "--timeout=60s", check=False).returncode == 0,
            timeout=180,
            what=f"the CRD {name} established",
        )  # fmt: skip
