"""`flowrun dev image`: build the project's own Dockerfile here, without Docker or a registry.

The Dockerfile defines the image; this executes it. Its base (`ARG PYTHON_IMAGE`, python:slim on a
registry) cannot be pulled here, so the base is a Debian bookworm root filesystem made by mmdebstrap
with Debian's Python (what python:3.11-slim-bookworm is built on). Each stage starts from a copy of
its base; RUN steps run chrooted, in fresh mount, PID and network namespaces (no network at all),
and pip installs from a wheelhouse built on the host from the same pins as this venv, passed the way
Docker passes build arguments (`PIP_NO_INDEX`, `PIP_FIND_LINKS`). The result is packed as an OCI
archive tagged with a hash of everything it was built from (never `:latest`) and cached.

Why not buildah: Debian's buildah would still need the same local base, an offline pip and its own
storage and network setup; executing the dozen instructions a plain Dockerfile uses is smaller and
its every step is visible here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from flowrun.dev import build, imagebuild, oci

IMAGE_REPO = "localhost/flowrun/flowrun-operator"
# The Dockerfile's `dask-operator` target: the dask-kubernetes operator (the chart's subchart).
DASK_OPERATOR_REPO = "localhost/flowrun/dask-operator"
DASK_OPERATOR_TARGET = "dask-operator"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "passwd",
                 "ca-certificates")  # fmt: skip
BASE_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
_BASE_ARG = "PYTHON_IMAGE"
_WHEELHOUSE = "/tmp/flowrun-wheelhouse"
_CONTEXT = ("pyproject.toml", "README.md", "operator")


class ImageError(RuntimeError):
    """The image could not be built; the message names the step and its output."""


@dataclass(frozen=True)
class BuiltImage:
    """The archive holds both images (one shared layer): `name` and `dask_operator`."""

    name: str
    archive: Path

    @property
    def dask_operator(self) -> str:
        return f"{DASK_OPERATOR_REPO}:{self.name.rsplit(':', 1)[1]}"


def project_root() -> Path:
    root = Path(__file__).resolve().parents[3]
    if not (root / "Dockerfile").exists():
        raise ImageError(f"no Dockerfile at {root}: `flowrun dev image` needs a source checkout")
    return root


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(argv: list[str], *, what: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise ImageError(
            f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


def _pins() -> str:
    """This venv's exact versions: the image's Dask must match the client's."""
    frozen = _run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], what="pip freeze")
    return "\n".join(
        line for line in frozen.splitlines() if line and not line.startswith(("-e", "#"))
    )


def _context_files(root: Path) -> list[Path]:
    files = []
    for name in _CONTEXT:
        path = root / name
        if path.is_dir():
            files += [
                f for f in path.rglob("*")
                if f.is_file() and "__pycache__" not in f.parts and ".egg-info" not in str(f)
            ]  # fmt: skip
        else:
            files.append(path)
    return sorted(files)


def content_hash(root: Path, pins: str) -> str:
    h = hashlib.sha256()
    h.update(f"{SUITE} {BASE_PACKAGES} {BASE_ENV}\n{pins}\n".encode())
    for path in [root / "Dockerfile", *_context_files(root)]:
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def image_name(root: Path | None = None) -> str:
    return f"{IMAGE_REPO}:{content_hash(root or project_root(), _pins())}"


def _base_rootfs(cache: Path) -> Path:
    """Debian + Python, made once per package set; stands in for python:3.11-slim-bookworm."""
    key = hashlib.sha256(f"{SUITE} {BASE_PACKAGES}".encode()).hexdigest()[:12]
    target = cache / f"base-{key}"
    if (target / ".complete").exists():
        return target / "rootfs"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    _log(f"==> Debian {SUITE} base with Python (mmdebstrap)")
    excludes = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale")]
    _run(["mmdebstrap", "--variant=essential", f"--include={','.join(BASE_PACKAGES)}",
          *excludes, SUITE, str(target / "rootfs")], what="mmdebstrap")  # fmt: skip
    # python:slim has no EXTERNALLY-MANAGED marker; neither may the stand-in.
    for marker in (target / "rootfs" / "usr" / "lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    (target / ".complete").touch()
    return target / "rootfs"


def _wheelhouse(cache: Path, root: Path, pins: str) -> Path:
    """The project's wheel dependencies and build backend, pinned, for an offline pip."""
    key = hashlib.sha256(pins.encode() + (root / "pyproject.toml").read_bytes()).hexdigest()[:12]
    target = cache / f"wheelhouse-{key}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    _log("==> wheelhouse (pip wheel, on the host)")
    constraints = target / "constraints.txt"
    constraints.write_text(pins + "\n")
    pip = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "-w",
        str(target),
        "-c",
        str(constraints),
    ]
    _run([*pip, str(root)], what="pip wheel of the project")
    _run([*pip, "setuptools>=77", "wheel"], what="pip wheel of the build backend")
    for own in target.glob("flowrun_operator-*.whl"):
        own.unlink()  # the Dockerfile builds its own wheel from the context
    (target / ".complete").touch()
    return target


def ensure_image(*, force: bool = False) -> BuiltImage:
    """Build the image when the project changed; return its name and OCI archive."""
    root = project_root()
    pins = _pins()
    digest = content_hash(root, pins)
    name = f"{IMAGE_REPO}:{digest}"
    cache = build.cache_root() / "images"
    archive = cache / f"flowrun-operator-{digest}.tar"
    if archive.exists() and not force:
        return BuiltImage(name, archive)
    if os.geteuid() != 0:
        raise ImageError("building the image needs root (chroot and namespaces)")
    with build.locked(cache / "image.lock"):
        if archive.exists() and not force:
            return BuiltImage(name, archive)
        started = time.monotonic()
        _log(f"Building {name} from {root / 'Dockerfile'}")
        base = _base_rootfs(cache)
        wheels = _wheelhouse(cache, root, pins)
        with tempfile.TemporaryDirectory(dir=cache, prefix="build-") as work:
            stages = imagebuild.execute_stages(
                root, Path(work), base=base, base_env=BASE_ENV, wheelhouse=wheels,
                build_args={_BASE_ARG: imagebuild.LOCAL_BASE, "REVISION": digest,
                            "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": _WHEELHOUSE},
            )  # fmt: skip
            config, rootfs = stages[imagebuild.LAST]
            dask_config, dask_rootfs = stages[DASK_OPERATOR_TARGET]
            if dask_rootfs != rootfs:
                raise ImageError(f"the {DASK_OPERATOR_TARGET} stage may only set metadata")
            partial = archive.with_suffix(".partial")
            built = BuiltImage(name, archive)
            oci.pack_images(rootfs, partial, {name: config, built.dask_operator: dask_config})
            partial.rename(archive)
        for stale in cache.glob("flowrun-operator-*.tar"):
            if stale != archive:
                stale.unlink()
        _log(f"Image built in {time.monotonic() - started:.0f} s: {name}")
    return BuiltImage(name, archive)
