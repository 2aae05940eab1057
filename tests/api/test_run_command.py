"""`flowrun run`: exit codes, and bad input reported by field with exit 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowrun.cli import main as flowrun_main


def manifest(tmp_path: Path, spec: Any, **top: Any) -> Path:
    body = {"apiVersion": "flowrun.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": "t"}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**body, **top, "spec": spec}))
    return path


def inline(**spec: Any) -> dict[str, Any]:
    return {
        "flow": {
            "parameters": [{"name": "who"}],
            "tasks": [
                {"name": "hi", "fn": "flowrun.examples.etl:hello", "args": [{"parameter": "who"}]}
            ],
        },
        "returnTasks": ["hi"],
        **spec,
    }


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = flowrun_main(["run", "--quiet", "--executor", "local", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_param_values_are_yaml_and_satisfy_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, str(manifest(tmp_path, inline())), "--param", "who=42")
    assert code == 0
    assert yaml.safe_load(out)["status"]["results"] == {"hi": "Hello, 42!"}


def test_a_secret_parameter_must_be_given_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = inline(parametersFrom=[{"name": "who", "secretKeyRef": {"name": "s", "key": "k"}}])
    path = manifest(tmp_path, spec)
    code, out, err = run(capsys, str(path))
    assert code == 2
    assert out == ""
    assert "spec.parametersFrom[0]: flowrun run cannot read Secrets" in err
    assert "--param who=VALUE" in err
    code, out, _ = run(capsys, str(path), "-p", "who=secret-value")
    assert code == 0
    assert "secret-value" not in yaml.safe_dump(yaml.safe_load(out)["status"]["tasks"])


@pytest.mark.parametrize(
    ("spec", "extra", "expected"),
    [
        (inline(), [], "spec.parameters: missing required parameter 'who'"),
        (inline(startTasks=["hey"]), ["-p", "who=x"], "spec.startTasks[0]: unknown task 'hey'"),
        (inline(cancle=True), ["-p", "who=x"], "spec.cancle: Extra inputs are not permitted"),
        (
            {"flow": {"ref": "flowrun.examples.nothing:flow"}},
            [],
            "spec.flow.ref: cannot load 'flowrun.examples.nothing:flow'",
        ),
        (
            {"flow": {"ref": "flowrun.examples.etl:hello"}},
            [],
            "spec.flow.ref: cannot load 'flowrun.examples.etl:hello': ",
        ),
        (
            {"flow": {"tasks": [{"name": "a", "fn": "m:f", "args": [{"task": "b"}]}]}},
            [],
            "spec.flow.tasks[0].args[0]: unknown task 'b'",
        ),
        (inline(), ["-p", "novalue"], "--param 'novalue': expected NAME=VALUE"),
    ],
)
def test_bad_input_names_the_field_and_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    spec: Any,
    extra: list[str],
    expected: str,
) -> None:
    code, out, err = run(capsys, str(manifest(tmp_path, spec)), *extra)
    assert code == 2
    assert out == ""
    assert expected in " ".join(err.split()), err
    assert "Traceback" not in err


def test_not_a_flowrun_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    code, _, err = run(capsys, str(missing))
    assert code == 2
    assert "No such file" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed")
    assert run(capsys, str(broken))[0] == 2
    wrong = manifest(tmp_path, inline(), kind="Pod")
    code, _, err = run(capsys, str(wrong))
    assert code == 2
    assert "kind: Input should be 'FlowRun'" in err


def test_a_failed_run_exits_1_with_the_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {"flow": {"tasks": [{"name": "f", "fn": "flowrun.examples.etl:fail"}]}}
    code, out, err = run(capsys, str(manifest(tmp_path, spec)))
    assert code == 1
    status = yaml.safe_load(out)["status"]
    assert status["phase"] == "Failed"
    assert status["failed"] == 1
    assert status["tasks"]["f"]["state"] == "Failed"
    assert "this task always fails" in status["tasks"]["f"]["message"]
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert "f Failed" in err  # shown live


def test_secret_values_are_masked_in_status_and_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {
        "flow": {
            "parameters": [{"name": "token"}],
            "tasks": [
                {
                    "name": "echo",
                    "fn": "flowrun.examples.etl:fail",
                    "kwargs": {"message": {"parameter": "token"}},
                }
            ],
        },
        "parametersFrom": [{"name": "token", "secretKeyRef": {"name": "s", "key": "k"}}],
    }
    code, out, err = run(capsys, str(manifest(tmp_path, spec)), "-p", "token=hunter2-secret")
    assert code == 1
    assert "hunter2-secret" not in out
    assert "hunter2-secret" not in err
    assert "***" in yaml.safe_load(out)["status"]["tasks"]["echo"]["message"]


def test_adaptive_workers_run_on_an_adaptive_local_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    adapt = {"type": "Dask", "dask": {"adapt": {"minimum": 0, "maximum": 2}}}
    path = manifest(tmp_path, inline(executor=adapt))
    code = flowrun_main(["run", str(path), "-p", "who=x"])
    captured = capsys.readouterr()
    assert code == 0, captured
    assert yaml.safe_load(captured.out)["status"]["results"] == {"hi": "Hello, x!"}
    assert "adaptive LocalCluster (0-2 workers)" in captured.err
    both = {"type": "Dask", "dask": {"workers": 2, "adapt": {"maximum": 2}}}
    code, _, err = run(capsys, str(manifest(tmp_path, inline(executor=both))), "-p", "who=x")
    assert code == 2
    assert "dask.workers and dask.adapt contradict each other" in err


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_a_secret_a_task_prints_or_logs_is_masked_in_flowrun_run_s_output(
    tmp_path: Path, executor: str
) -> None:
    """A task's prints and logs pass the run's masker, as in the runner Pod
    (tests/controller/test_runner_identity.py): in the command's process (local), and in the
    LocalCluster's worker processes (dask), which write to the same stdout and stderr. A real
    process: pytest would catch the log records in this one."""
    who = {"parameter": "who"}
    spec = {
        "flow": {
            "parameters": [{"name": "who"}],
            "tasks": [
                {"name": "say", "fn": "builtins:print", "args": ["the token is", who]},
                {"name": "log", "fn": "logging:warning", "args": ["logged %s", who]},
            ],
        },
        "parametersFrom": [{"name": "who", "secretKeyRef": {"name": "s", "key": "k"}}],
    }
    path = manifest(tmp_path, spec)
    command = ["run", "-q", "--executor", executor, "-p", "who=s3cr3t-printed", str(path)]
    done = subprocess.run(
        [sys.executable, "-m", "flowrun.cli", *command],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, err
    assert "the token is ***\n" in out
    assert "logged ***" in err
    assert "s3cr3t" not in out + err
