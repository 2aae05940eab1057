"""The runner's start-up: what `flowrun runner` imports before it can run a flow (each runner
Pod pays it; benchmarks/product_path.py measures it on a node)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from flowrun.controller import runner_cli
runner_cli.load_runner()
loaded = sorted(n for n in sys.modules if n.split(".")[0] in runner_cli.KOPF_OPTIONAL)
from kopf._cogs.helpers import thirdparty
import kubernetes_asyncio.client  # a flow's own code still can
print(loaded, thirdparty.V1ObjectMetaAsync)
"""


def test_the_runner_starts_without_the_clients_kopf_only_probes_for():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.split() == ["[]", "None"], out
