"""`flowrun run` and the import boundary, in a fresh interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from flowrun.dev.waiting import wait_for

HERE = Path(__file__).resolve().parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}


def test_sigterm_cancels_gracefully(tmp_path: Path) -> None:
    marker = tmp_path / "running"
    manifest = tmp_path / "block.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "flowrun.dev/v1alpha1",
                "kind": "FlowRun",
                "metadata": {"name": "block"},
                "spec": {
                    "flow": {
                        "tasks": [
                            {
                                "name": "work",
                                "fn": "blocking_tasks:block_until_cancelled",
                                "kwargs": {"marker": str(marker)},
                            },
                            {"name": "after", "fn": "flowrun.examples.etl:hello"},
                        ]
                    }
                },
            }
        )
    )
    command = [sys.executable, "-m", "flowrun.cli", "run", str(manifest), "-q", "--executor=local"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    ) as proc:

        def started() -> bool:
            assert proc.poll() is None, proc.communicate()
            return marker.exists()

        wait_for(started, timeout=60, interval=0.05, what="the task to be running")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    status = yaml.safe_load(out)["status"]
    assert status["phase"] == "Cancelled", status
    assert status["tasks"]["work"]["state"] == "Cancelled"
    assert "Traceback" not in err


def test_api_and_flowrun_run_import_nothing_from_kubernetes_land() -> None:
    code = (
        "import sys, flowrun.api, flowrun.api.crd, flowrun.api.status, flowrun.api.flows, "
        "flowrun.api.cli, flowrun.runlocal\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'kopf', 'kubernetes', 'kr8s', 'dask_kubernetes', 'distributed'})\n"
        "assert not bad, bad\n"
        "assert not [m for m in sys.modules if m.startswith('flowrun.controller')]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=False
    )
    assert result.returncode == 0, result.stderr


def _blocking_manifest(tmp_path: Path, marker: Path, **spec: Any) -> Path:
    path = tmp_path / "block.yaml"
    body = {
        "apiVersion": "flowrun.dev/v1alpha1",
        "kind": "FlowRun",
        "metadata": {"name": "block"},
        "spec": {
            "flow": {
                "tasks": [
                    {
                        "name": "work",
                        "fn": "blocking_tasks:block_until_cancelled",
                        "kwargs": {"marker": str(marker)},
                    }
                ]
            },
            **spec,
        },
    }
    path.write_text(yaml.safe_dump(body))
    return path


def test_active_deadline_stops_the_run_as_failed(tmp_path: Path) -> None:
    marker = tmp_path / "running"
    path = _blocking_manifest(tmp_path, marker, activeDeadlineSeconds=1)
    result = subprocess.run(
        [sys.executable, "-m", "flowrun.cli", "run", str(path), "-q", "--executor=local"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    status = yaml.safe_load(result.stdout)["status"]
    assert status["phase"] == "Failed"
    assert "exceeded spec.activeDeadlineSeconds (1s)" in status["message"]
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "DeadlineExceeded")
    assert status["tasks"]["work"]["state"] == "Cancelled"


def test_a_cancelled_manifest_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "running"
    path = _blocking_manifest(tmp_path, marker, cancel=True)
    result = subprocess.run(
        [sys.executable, "-m", "flowrun.cli", "run", str(path), "-q", "--executor=local"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert yaml.safe_load(result.stdout)["status"]["phase"] == "Cancelled"
    assert not marker.exists()
