"""`flowrun run` of a FlowRun with `spec.flow.templateRef`: the FlowTemplate from the same file
or from `--template` files; a clear error (exit 2) naming the field when it is not there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowrun.cli import main as flowrun_main


def doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "flowrun.dev/v1alpha1", "kind": kind, "metadata": {"name": name},
            "spec": spec}  # fmt: skip


HELLO = {"name": "hi", "fn": "flowrun.examples.etl:hello", "args": [{"parameter": "who"}]}
TEMPLATE = doc(
    "FlowTemplate",
    "greet",
    {"flow": {"parameters": [{"name": "who", "required": True}], "tasks": [HELLO]}},
)
RUN = doc("FlowRun", "t", {"flow": {"templateRef": {"name": "greet"}}, "returnTasks": ["hi"]})


def write(path: Path, *docs: Any) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = flowrun_main(["run", "--quiet", "--executor", "local", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_template_in_the_same_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, write(tmp_path / "r.yaml", TEMPLATE, RUN), "-p", "who=you")
    assert code == 0, err
    status = yaml.safe_load(out)["status"]
    assert status["results"] == {"hi": "Hello, you!"}
    assert status["template"] == {"name": "greet"}
    assert status["tasks"]["hi"]["state"] == "Success"


def test_the_template_from_a_template_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = {**TEMPLATE, "metadata": {"name": "other"}}
    templates = write(tmp_path / "t.yaml", other, TEMPLATE)
    manifest = write(tmp_path / "r.yaml", RUN)
    code, out, _ = run(capsys, manifest, "--template", templates, "-p", "who=me")
    assert code == 0
    assert yaml.safe_load(out)["status"]["results"] == {"hi": "Hello, me!"}


def test_errors_name_the_field_and_the_way_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write(tmp_path / "r.yaml", RUN)
    code, out, err = run(capsys, manifest, "-p", "who=x")
    assert (code, out) == (2, "")
    said = " ".join(err.split())
    assert "spec.flow.templateRef.name: FlowTemplate 'greet' not found in" in said
    assert "--template FILE" in said
    code, _, err = run(capsys, write(tmp_path / "both.yaml", TEMPLATE, RUN))
    assert code == 2
    assert "spec.parameters: missing required parameter 'who'" in err
    broken = {
        **TEMPLATE,
        "spec": {"flow": {"tasks": [{"name": "a", "fn": "x:y", "upstream": ["b"]}]}},
    }
    code, _, err = run(capsys, write(tmp_path / "bad.yaml", broken, RUN))
    assert code == 2
    assert "FlowTemplate 'greet': spec.flow.tasks[0].upstream[0]: unknown task 'b'" in err
    code, _, err = run(capsys, manifest, "--template", write(tmp_path / "x.yaml", RUN))
    assert code == 2
    assert "document 1 is not a FlowTemplate (kind: FlowRun)" in " ".join(err.split())
    code, _, err = run(capsys, write(tmp_path / "two.yaml", RUN, RUN))
    assert code == 2
    assert "expected one FlowRun document (and any FlowTemplates), found 2" in " ".join(err.split())
