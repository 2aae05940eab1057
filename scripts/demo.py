"""`make demo`: the product's main job on a fresh machine.

For now: bring the real local control plane up, show that it answers, bring it down. The operator
work extends this to install the CRD, run the operator and apply the examples.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flowrun.dev import build
from flowrun.dev.controlplane import ControlPlane


def main() -> int:
    bins = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="flowrun-demo-") as tmp:
        plane = ControlPlane(Path(tmp) / "plane", bin_dir=bins)
        started = time.monotonic()
        plane.start()
        try:
            print(f"control plane up at {plane.server} in {time.monotonic() - started:.1f} s")
            kubectl = [str(bins / "kubectl"), f"--kubeconfig={plane.kubeconfig}"]
            subprocess.run([*kubectl, "get", "--raw", "/version"], check=True)
            print()
            subprocess.run([*kubectl, "get", "--raw", "/readyz?verbose"], check=True)
        finally:
            plane.stop()
            print("control plane stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
