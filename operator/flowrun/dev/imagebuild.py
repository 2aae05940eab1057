"""Execute a parsed Dockerfile over local root filesystems (see flowrun.dev.image for why).

A stage starts as a copy of its base's rootfs (the local Debian base, or an earlier stage); RUN
runs `/bin/sh -c` chrooted into it, in new mount, PID and network namespaces, with the stage's ENV
and declared ARGs as its environment, exactly the variables Docker would give it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from flowrun.dev import dockerfile, oci
from flowrun.dev.dockerfile import DockerfileError

LOCAL_BASE = "flowrun-local-base"
WHEELHOUSE_MOUNT = "tmp/flowrun-wheelhouse"
# What the project's .dockerignore keeps out of the build context. Only a COPY from the context
# obeys it: `COPY --from=<stage>` copies the stage's files as they are, as Docker does (pip's
# compiled bytecode included; without it every Python process of every Pod compiles its imports
# again, seconds of CPU at each start, as the image's root is read-only).
_IGNORED = ("__pycache__", ".pyc", ".egg-info")
# The key of the last stage (the default target) in execute_stages' result.
LAST = ""
_FILE_CHANGES = {"RUN", "COPY", "WORKDIR"}


@dataclass
class _StageState:
    rootfs: Path
    config: oci.ImageConfig
    args: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return dict(pair.split("=", 1) for pair in self.config.env)

    def values(self) -> dict[str, str]:
        return {**self.args, **self.env()}

    def set_env(self, key: str, value: str) -> None:
        self.config.env = [e for e in self.config.env if not e.startswith(key + "=")]
        self.config.env.append(f"{key}={value}")

    def path(self, inside: str) -> Path:
        absolute = inside if inside.startswith("/") else f"{self.config.workdir or '/'}/{inside}"
        return self.rootfs / os.path.normpath(absolute).lstrip("/")


def _copytree(src: Path, dest: Path, *, from_context: bool) -> None:
    def ignore(_directory: str, names: list[str]) -> set[str]:
        return {n for n in names if any(n.endswith(s) or n == s for s in _IGNORED)}

    shutil.copytree(
        src, dest, symlinks=True, dirs_exist_ok=True, ignore=ignore if from_context else None
    )


def _copy(stage: _StageState, rest: str, context: Path, stages: dict[str, _StageState]) -> None:
    words = rest.split()
    source_root = context
    if words[0].startswith("--from="):
        source_root = stages[words.pop(0).split("=", 1)[1]].rootfs
    *sources, dest = words
    target = stage.path(dest)
    for source in sources:
        src = source_root / source.lstrip("/")
        if not src.exists():
            raise DockerfileError(f"COPY source {source} does not exist")
        if src.is_dir():
            _copytree(src, target, from_context=source_root is context)
        else:
            into_dir = dest.endswith("/") or len(sources) > 1 or target.is_dir()
            final = target / src.name if into_dir else target
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, final)


def _run(stage: _StageState, command: str, wheelhouse: Path) -> None:
    root = stage.rootfs
    mount_point = root / WHEELHOUSE_MOUNT
    mount_point.mkdir(parents=True, exist_ok=True)
    workdir = stage.config.workdir or "/"
    user = ["--userspec=" + stage.config.user] if stage.config.user else []
    inner = (
        f'mount --bind "$1" "$2/{WHEELHOUSE_MOUNT}" && '
        f'exec /usr/sbin/chroot {" ".join(user)} "$2" /bin/sh -c "cd \\"$3\\" && $4"'
    )
    argv = ["/usr/bin/unshare", "--mount", "--pid", "--net", "--fork",
            f"--mount-proc={root / 'proc'}", "--", "/bin/sh", "-c", inner, "sh",
            str(wheelhouse), str(root), workdir, command]  # fmt: skip
    env = {**stage.args, **stage.env()}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    mount_point.rmdir()
    if result.returncode != 0:
        raise DockerfileError(
            f"RUN {command}\nfailed ({result.returncode}):\n{result.stdout[-3000:]}"
            f"{result.stderr[-3000:]}"
        )


@dataclass
class _Build:
    context: Path
    work: Path
    base: Path
    base_env: list[str]
    wheelhouse: Path
    build_args: dict[str, str]
    global_args: dict[str, str | None] = field(default_factory=dict)
    stages: dict[str, _StageState] = field(default_factory=dict)

    def start_stage(self, base: str, index: int, *, changes_files: bool = True) -> _StageState:
        rootfs = self.work / f"stage{index}"
        if base in self.stages:
            parent = self.stages[base]
            if changes_files:
                shutil.copytree(parent.rootfs, rootfs, symlinks=True)
            else:
                # Only metadata (ENTRYPOINT, CMD, ENV...): the parent's files, shared, not copied.
                rootfs = parent.rootfs
            config = oci.ImageConfig(**{**parent.config.__dict__, "env": list(parent.config.env)})
            return _StageState(rootfs, config)
        if base != LOCAL_BASE:
            raise DockerfileError(
                f"base image {base!r} cannot be pulled here (no registry); the local build passes "
                f"the base as a build argument whose value is {LOCAL_BASE!r}"
            )
        subprocess.run(["cp", "-a", "--reflink=auto", str(self.base), str(rootfs)], check=True)
        return _StageState(rootfs, oci.ImageConfig(env=list(self.base_env)))

    def apply(self, stage: _StageState, keyword: str, rest: str) -> None:
        values = stage.values()
        c = stage.config
        if keyword == "ARG":
            key, eq, default = rest.partition("=")
            value = self.build_args.get(key, default if eq else self.global_args.get(key))
            if value is not None:
                stage.args[key] = value
        elif keyword in ("ENV", "LABEL"):
            pairs = dockerfile.env_pairs(rest, values)
            for key, value in pairs:
                if keyword == "ENV":
                    stage.set_env(key, value)
            if keyword == "LABEL":
                c.labels.update(pairs)
        elif keyword == "WORKDIR":
            workdir = Path(c.workdir or "/") / dockerfile.substitute(rest, values)
            c.workdir = os.path.normpath(str(workdir))
            stage.path(c.workdir).mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            _copy(stage, dockerfile.substitute(rest, values), self.context, self.stages)
        elif keyword == "RUN":
            _run(stage, rest, self.wheelhouse)
        elif keyword == "USER":
            c.user = dockerfile.substitute(rest, values)
        elif keyword == "EXPOSE":
            c.exposed_ports += [p if "/" in p else f"{p}/tcp" for p in rest.split()]
        elif keyword == "ENTRYPOINT":
            c.entrypoint, c.cmd = dockerfile.exec_form(rest), None
        elif keyword == "CMD":
            c.cmd = dockerfile.exec_form(rest)


def execute(
    context: Path,
    work: Path,
    *,
    base: Path,
    base_env: list[str],
    wheelhouse: Path,
    build_args: dict[str, str],
) -> tuple[oci.ImageConfig, Path]:
    """Build every stage of `context`/Dockerfile; return the last stage's config and rootfs."""
    stages = execute_stages(
        context, work, base=base, base_env=base_env, wheelhouse=wheelhouse, build_args=build_args
    )
    return stages[LAST]


def execute_stages(
    context: Path,
    work: Path,
    *,
    base: Path,
    base_env: list[str],
    wheelhouse: Path,
    build_args: dict[str, str],
) -> dict[str, tuple[oci.ImageConfig, Path]]:
    """Build every stage; return each stage's config and rootfs by name (the last also as LAST).

    A stage that only sets metadata shares its parent's rootfs path: the targets of one build
    can then be packed over one layer (see oci.pack_images).
    """
    parsed = dockerfile.parse((context / "Dockerfile").read_text())
    b = _Build(context, work, base, base_env, wheelhouse, build_args)
    b.global_args = {k: build_args.get(k, v) for k, v in parsed.global_args.items()}
    from_values = {k: v for k, v in b.global_args.items() if v is not None}
    current: _StageState | None = None
    for index, spec in enumerate(parsed.stages):
        changes = any(k in _FILE_CHANGES for k, _ in spec.instructions)
        base_name = dockerfile.substitute(spec.base, from_values)
        current = b.start_stage(base_name, index, changes_files=changes)
        for keyword, rest in spec.instructions:
            b.apply(current, keyword, rest)
        b.stages[spec.name or str(index)] = current
    assert current is not None
    built = {name: (stage.config, stage.rootfs) for name, stage in b.stages.items()}
    built[LAST] = (current.config, current.rootfs)
    return built
