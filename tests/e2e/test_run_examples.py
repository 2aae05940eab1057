"""Examples are tests: every manifest in `examples/` runs through `flowrun run`.

In-process (`flowrun.cli.main`), so a failure shows the engine's traceback; the Local executor
for speed, plus one run of each other executor. The same manifests are applied to a real API
server in `tests/api/test_crd_apiserver.py` and run by the operator in the controller tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowrun.api.models import FlowRunStatus
from flowrun.cli import main as flowrun_main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))

EXPECTED: dict[str, dict[str, Any]] = {
    "hello.yaml": {"hello": "Hello, FlowRun!"},
    "etl.yaml": {"load": 200},
    "mapping.yaml": {"total": 385},
    "start-tasks.yaml": {"load": 60},
    "flow-ref.yaml": {"load": 120},
    "template.yaml": {"load": 120},
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = flowrun_main(["run", "--quiet", *args])
    out = capsys.readouterr().out
    status: dict[str, Any] = yaml.safe_load(out)["status"]
    FlowRunStatus.model_validate(status)  # the operator's shape
    return code, status


def test_every_example_has_an_expectation() -> None:
    assert {m.name for m in MANIFESTS} == set(EXPECTED)


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_example_succeeds(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, status = run(capsys, str(manifest), "--executor", "local")
    assert code == 0, status
    assert status["phase"] == "Succeeded"
    assert status["results"] == EXPECTED[manifest.name]
    done, total = status["progress"].split("/")
    assert done == total
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_a_runner_spec_is_said_to_be_ignored_here(capsys: pytest.CaptureFixture[str]) -> None:
    manifest = EXAMPLES / "mapping.yaml"
    assert "runner" in yaml.safe_load(manifest.read_text())["spec"]
    assert flowrun_main(["run", "--quiet", str(manifest), "--executor", "local"]) == 0
    assert "spec.runner is not applied here" in " ".join(capsys.readouterr().err.split())
    assert flowrun_main(["run", "--quiet", str(EXAMPLES / "etl.yaml"), "--executor", "local"]) == 0
    assert "spec.runner" not in capsys.readouterr().err


def test_etl_retries_transform(capsys: pytest.CaptureFixture[str]) -> None:
    _, status = run(capsys, str(EXAMPLES / "etl.yaml"), "--executor", "local")
    assert status["tasks"]["transform"]["runCount"] == 2


def test_start_tasks_do_not_run_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    _, status = run(capsys, str(EXAMPLES / "start-tasks.yaml"), "--executor", "local")
    assert "runCount" not in status["tasks"]["extract"]  # given, never run
    assert status["tasks"]["transform"]["runCount"] == 1


def test_mapping_counts_children(capsys: pytest.CaptureFixture[str]) -> None:
    _, status = run(capsys, str(EXAMPLES / "mapping.yaml"), "--executor", "sync", "-p", "count=20")
    assert status["tasks"]["square"]["children"] == {"total": 20, "Success": 20}
    assert status["results"] == {"total": sum(i * i for i in range(1, 21))}


@pytest.mark.slow
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_example_on_a_dask_local_cluster(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest's own executor (Dask), on a LocalCluster: the operator's Local provider."""
    code, status = run(capsys, str(manifest))
    assert code == 0, status
    assert status["results"] == EXPECTED[manifest.name]
