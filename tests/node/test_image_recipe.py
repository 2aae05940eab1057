"""The local image build follows the project's Dockerfile and names images by their content."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flowrun.dev import dockerfile, image, imagebuild, oci

ROOT = Path(__file__).resolve().parents[2]


def test_the_projects_dockerfile_parses_with_its_base_as_a_build_argument():
    parsed = dockerfile.parse((ROOT / "Dockerfile").read_text())
    assert parsed.global_args["PYTHON_IMAGE"], "the base must stay a build argument"
    assert [s.base for s in parsed.stages] == [
        "${PYTHON_IMAGE}", "${PYTHON_IMAGE}", "runtime", "runtime"
    ]  # fmt: skip
    build_stage_args = [rest for kw, rest in parsed.stages[0].instructions if kw == "ARG"]
    assert {"PIP_NO_INDEX", "PIP_FIND_LINKS"} <= set(build_stage_args)


def test_an_unsupported_instruction_is_named():
    with pytest.raises(dockerfile.DockerfileError, match="HEALTHCHECK"):
        dockerfile.parse("FROM x\nHEALTHCHECK CMD true\n")


def test_variables_are_substituted_as_docker_does():
    values = {"A": "1", "PATH": "/bin"}
    assert dockerfile.substitute("${A}-$A-$PATH:/x-${MISSING}", values) == "1-1-/bin:/x-"
    assert dockerfile.exec_form('["a", "b c"]') == ["a", "b c"]
    assert dockerfile.exec_form("echo hi") == ["/bin/sh", "-c", "echo hi"]


def test_a_base_that_would_need_a_registry_is_refused_with_the_way_out(tmp_path: Path):
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nRUN true\n")
    with pytest.raises(dockerfile.DockerfileError, match="cannot be pulled here"):
        imagebuild.execute(
            tmp_path, tmp_path / "work", base=tmp_path, base_env=[], wheelhouse=tmp_path,
            build_args={},
        )  # fmt: skip


def test_the_tag_is_a_content_hash_that_changes_with_the_project(tmp_path: Path):
    for name in ("Dockerfile", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / "operator" / "flowrun").mkdir(parents=True)
    module = tmp_path / "operator" / "flowrun" / "__init__.py"
    module.write_text("")
    first = image.content_hash(tmp_path, "dask==1")
    assert first == image.content_hash(tmp_path, "dask==1")
    module.write_text("x = 1\n")
    assert image.content_hash(tmp_path, "dask==1") != first
    assert image.content_hash(tmp_path, "dask==2") != image.content_hash(tmp_path, "dask==1")
    assert "latest" not in image.image_name()


def test_copy_from_a_stage_keeps_its_bytecode_as_docker_does(tmp_path: Path):
    """`.dockerignore` filters the build context only: the venv a stage built (pip compiled its
    bytecode) reaches the runtime stage whole, so Pods do not compile their imports at start."""
    context, build, runtime = tmp_path / "ctx", tmp_path / "build", tmp_path / "runtime"
    for root in (context / "src", build / "opt" / "venv"):
        (root / "__pycache__").mkdir(parents=True)
        (root / "m.py").write_text("x = 1\n")
        (root / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    stages = {"build": imagebuild._StageState(build, oci.ImageConfig())}
    stage = imagebuild._StageState(runtime, oci.ImageConfig())
    imagebuild._copy(stage, "--from=build /opt/venv /opt/venv", context, stages)
    imagebuild._copy(stage, "src/ /src/", context, stages)
    assert (runtime / "opt" / "venv" / "__pycache__" / "m.cpython-311.pyc").is_file()
    assert (runtime / "src" / "m.py").is_file()
    assert not (runtime / "src" / "__pycache__").exists()
