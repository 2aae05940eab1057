"""Comparing a FlowRun's status from `flowrun run` with the one a cluster wrote (issue 9): the
operator's in-process path (tests/controller/test_parity.py) and runner Pods (tests/node)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from support.flowruns import FLOWS

TIMES = {"startTime", "completionTime", "endTime", "lastTransitionTime"}
# The operator's own housekeeping about a run (restarts, clean-up): absent by nature locally.
HOUSEKEEPING = {"handedOver", "operatorRestarts"}


def comparable(status: dict[str, Any]) -> dict[str, Any]:
    """A status without what differs by nature between two runs: times, cluster address, the
    operator's housekeeping."""
    left_out = TIMES | HOUSEKEEPING | {"cluster"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in left_out}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    out: dict[str, Any] = strip(status)
    if "template" in out:  # which template, not its cluster identity (uid, version, copy)
        out["template"] = {"name": out["template"]["name"]}
    return out


def example(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An example manifest's FlowRun spec, and the FlowTemplates beside it in its file."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    [run] = [d for d in docs if d["kind"] == "FlowRun"]
    return run["spec"], [d for d in docs if d["kind"] == "FlowTemplate"]


def run_locally(
    name: str,
    spec: dict[str, Any],
    tmp_path: Path,
    params: list[str] | None = None,
    templates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`flowrun run` of the manifest as a subprocess (`templates` in a `--template` file); the
    status it prints."""
    manifest = tmp_path / f"{name}.yaml"
    body = {"apiVersion": "flowrun.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip
    manifest.write_text(yaml.safe_dump(body))
    if templates:
        given = tmp_path / f"{name}-templates.yaml"
        given.write_text(yaml.safe_dump_all(templates))
        params = [*(params or []), f"--template={given}"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FLOWS), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-m", "flowrun.cli", "run", str(manifest), "-q", *(params or [])],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    status: dict[str, Any] = yaml.safe_load(out.stdout)["status"]
    return status
