"""Build the local control plane's binaries from Go modules, once, into a versioned cache.

`flowrun dev build`, `make test` and `make demo` call `ensure_built()`. No Docker engine or
prebuilt binary download is needed: etcd, kube-apiserver, kube-controller-manager, kubectl and helm
are compiled through the Go module proxy, and so are the node's kubelet, kube-proxy, kube-scheduler
and CoreDNS (`flowrun dev up --node`); the Pod sandbox's pause process is a static C program. The
node's Debian packages (containerd, runc, CNI plugins, iptables...) are installed by `hostpkgs`.
Kubernetes' own go.mod replaces its staging modules with
local paths, which `go install pkg@version` refuses, so each build happens in a throw-away wrapper
module that pins every staging module to the matching published version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from flowrun.dev import hostpkgs

K8S_VERSION = "v1.34.10"
ETCD_VERSION = "v3.6.14"
HELM_VERSION = "v3.21.4"
COREDNS_VERSION = "v1.14.7"
BINARIES = (
    "etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm",
    "kubelet", "kube-proxy", "kube-scheduler", "coredns", "pause",
)  # fmt: skip
_ASSETS = Path(__file__).parent / "assets"


class BuildError(RuntimeError):
    """A build step failed; the message says which and how to retry."""


def cache_root() -> Path:
    """The cache directory: `$FLOWRUN_CACHE_DIR`, else `$XDG_CACHE_HOME/flowrun`, else ~/.cache."""
    explicit = os.environ.get("FLOWRUN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "flowrun"


def bin_dir(root: Path | None = None) -> Path:
    """Where the binaries of the pinned versions live (one directory per version set)."""
    base = root or cache_root()
    versions = f"k8s-{K8S_VERSION}-etcd-{ETCD_VERSION}-helm-{HELM_VERSION}"
    return base / "bin" / f"{versions}-coredns-{COREDNS_VERSION}"


def is_built(directory: Path | None = None) -> bool:
    target = directory or bin_dir()
    return (target / ".complete").exists() and all((target / b).exists() for b in BINARIES)


@dataclass(frozen=True)
class _Step:
    title: str
    workdir: Path
    argv: tuple[str, ...]
    env: dict[str, str]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "Go is not installed: building the local control plane needs Go 1.24 or newer on PATH "
            "(Debian: `apt-get install golang-go`; or the official tarball). "
            "Then run `flowrun dev build` again."
        )
    return go


def _go_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(root / "go" / "mod"),
        GOCACHE=str(root / "go" / "build"),
        CGO_ENABLED="0",
        # Fail loudly instead of downloading a toolchain: only the module proxy is reachable.
        GOTOOLCHAIN="local",
        GOFLAGS="-mod=mod",
    )
    return env


def _version_ldflags() -> str:
    # Without these, /version reports v0.0.0-master and Helm's kubeVersion checks fail.
    major, minor = K8S_VERSION.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={K8S_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def _run_go(step: _Step) -> None:
    """Run one `go` command with `-v` output turned into a package counter, so progress shows."""
    _log(f"==> {step.title}")
    started = time.monotonic()
    proc = subprocess.Popen(
        step.argv,
        cwd=step.workdir,
        env=step.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    compiled = 0
    last_report = started
    for raw in proc.stdout:
        line = raw.rstrip()
        tail = [*tail[-40:], line]
        if line.startswith("go: downloading"):
            continue
        compiled += 1
        now = time.monotonic()
        if now - last_report >= 15:
            _log(f"    {compiled} packages compiled, {now - started:.0f} s ({line})")
            last_report = now
    if proc.wait() != 0:
        raise BuildError(
            f"{step.title} failed (exit {proc.returncode}) in {step.workdir}:\n"
            + "\n".join(tail)
            + f"\ncommand: {' '.join(step.argv)}"
        )
    _log(f"    done in {time.monotonic() - started:.0f} s")


def _kubernetes_module(work: Path, go: str, env: dict[str, str]) -> None:
    """Write a wrapper module requiring k8s.io/kubernetes with every staging module pinned."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        "module localhost/flowrun-k8s-bins\n\ngo 1.24.0\n\ngodebug default=go1.24\n"
    )
    subprocess.run(
        [go, "mod", "edit", f"-require=k8s.io/kubernetes@{K8S_VERSION}"],
        cwd=work,
        env=env,
        check=True,
    )
    info = subprocess.run(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@{K8S_VERSION}"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    gomod = json.loads(info.stdout)["GoMod"]
    parsed = subprocess.run(
        [go, "mod", "edit", "-json", gomod],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    # The staging list differs between minors (1.36 added two), so read it rather than hard-code it.
    staging = [
        r["Path"]
        for r in json.loads(parsed.stdout)["Require"]
        if r["Path"].startswith("k8s.io/") and r["Version"] == "v0.0.0"
    ]
    staging_version = "v0." + K8S_VERSION.lstrip("v").split(".", 1)[1]
    edits = [f"-replace={m}={m}@{staging_version}" for m in staging]
    subprocess.run([go, "mod", "edit", *edits], cwd=work, env=env, check=True)


def _steps(root: Path, work: Path, target: Path, go: str) -> list[_Step]:
    env = _go_env(root)
    k8s = work / "kubernetes"
    _kubernetes_module(k8s, go, env)
    etcd = work / "etcd"
    etcd.mkdir(parents=True, exist_ok=True)
    (etcd / "go.mod").write_text(
        f"module localhost/flowrun-etcd-bin\n\ngo 1.25.0\n\n"
        f"require go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n"
    )
    helm_env = {**env, "GOFLAGS": "", "GOBIN": str(target)}
    helm_pkg = "helm.sh/helm/v3"
    k8s_minor = K8S_VERSION.lstrip("v").split(".")[1]
    helm_ldflags = " ".join(
        [
            "-s -w",
            f"-X {helm_pkg}/internal/version.version={HELM_VERSION}",
            f"-X {helm_pkg}/internal/version.gitTreeState=clean",
            # Offline `helm template`/`lint` otherwise assume Kubernetes v1.20.
            f"-X {helm_pkg}/pkg/chartutil.k8sVersionMajor=1",
            f"-X {helm_pkg}/pkg/chartutil.k8sVersionMinor={k8s_minor}",
            f"-X {helm_pkg}/pkg/lint/rules.k8sVersionMajor=1",
            f"-X {helm_pkg}/pkg/lint/rules.k8sVersionMinor={k8s_minor}",
        ]
    )
    return [
        _Step(
            f"etcd {ETCD_VERSION}",
            etcd,
            (go, "build", "-v", "-trimpath", "-ldflags", "-s -w", "-o", str(target / "etcd"),
             "go.etcd.io/etcd/server/v3"),
            env,
        ),
        _Step(
            f"kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-proxy, "
            f"kube-scheduler {K8S_VERSION}",
            k8s,
            (go, "build", "-v", "-trimpath", "-tags", "selinux,notest",
             "-ldflags", _version_ldflags(), "-o", str(target) + "/",
             "k8s.io/kubernetes/cmd/kube-apiserver",
             "k8s.io/kubernetes/cmd/kube-controller-manager",
             "k8s.io/kubernetes/cmd/kubectl",
             "k8s.io/kubernetes/cmd/kubelet",
             "k8s.io/kubernetes/cmd/kube-proxy",
             "k8s.io/kubernetes/cmd/kube-scheduler"),
            env,
        ),
        *_coredns_steps(work, target, go, env),
        _Step(
            "pause (static, gcc)",
            work,
            (_gcc(), "-Os", "-static", "-s", "-o", str(target / "pause"),
             str(_ASSETS / "pause.c")),
            env,
        ),
        _Step(
            f"helm {HELM_VERSION}",
            work,
            (go, "install", "-v", "-trimpath", "-ldflags", helm_ldflags,
             f"{helm_pkg}/cmd/helm@{HELM_VERSION}"),
            helm_env,
        ),
    ]  # fmt: skip


def _gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BuildError(
            "gcc is not installed: the node's pause process is a static C program "
            "(Debian: `apt-get install gcc libc6-dev`). Then run `flowrun dev build` again."
        )
    return gcc


def _coredns_steps(work: Path, target: Path, go: str, env: dict[str, str]) -> list[_Step]:
    """CoreDNS from its Go module, with a main that links only the plugins the node uses.

    It needs a newer client-go than Kubernetes v1.34, so it has its own wrapper module.
    """
    module = work / "coredns"
    module.mkdir(parents=True, exist_ok=True)
    (module / "go.mod").write_text(
        "module localhost/flowrun-coredns\n\ngo 1.24.0\n\n"
        f"require github.com/coredns/coredns {COREDNS_VERSION}\n"
    )
    shutil.copyfile(_ASSETS / "coredns_main.go", module / "main.go")
    return [
        _Step(f"CoreDNS {COREDNS_VERSION} (module graph)", module, (go, "mod", "tidy"), env),
        _Step(
            f"CoreDNS {COREDNS_VERSION}",
            module,
            (go, "build", "-v", "-trimpath", "-ldflags", "-s -w", "-o",
             str(target / "coredns"), "."),
            env,
        ),
    ]  # fmt: skip


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        # A second `make test` started meanwhile waits here instead of building twice.
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(root: Path | None = None, *, force: bool = False) -> Path:
    """Build whatever binaries are missing and return their directory. Safe to call concurrently."""
    base = root or cache_root()
    target = bin_dir(base)
    if os.geteuid() == 0 and hostpkgs.missing():
        # Also with a warm cache: a fresh machine may get the cache without the packages.
        with locked(base / "apt.lock"):
            hostpkgs.ensure_installed()
    if is_built(target) and not force:
        return target
    with locked(base / "build.lock"):
        if is_built(target) and not force:
            return target
        go = _go()
        target.mkdir(parents=True, exist_ok=True)
        work = base / "work"
        _log(f"Building the local control plane into {target} (the first build takes a while)")
        started = time.monotonic()
        for step in _steps(base, work, target, go):
            _run_go(step)
        missing = [b for b in BINARIES if not (target / b).exists()]
        if missing:
            raise BuildError(f"the build finished but these binaries are missing: {missing}")
        elapsed = time.monotonic() - started
        (target / ".complete").write_text(json.dumps({"seconds": round(elapsed, 1)}) + "\n")
        _log(f"Cold build finished in {elapsed:.0f} s")
    return target


def describe(directory: Path | None = None) -> Sequence[str]:
    """One line per binary with its reported version, for `flowrun dev build` output."""
    target = directory or bin_dir()
    probes = {
        "etcd": ["--version"],
        "kube-apiserver": ["--version"],
        "kube-controller-manager": ["--version"],
        "kubectl": ["version", "--client"],
        "helm": ["version", "--short"],
        "kubelet": ["--version"],
        "kube-proxy": ["--version"],
        "kube-scheduler": ["--version"],
        "coredns": ["-version"],
    }
    lines = []
    for name, args in probes.items():
        out = subprocess.run(
            [str(target / name), *args], capture_output=True, text=True, check=False
        )
        first = (out.stdout or out.stderr).strip().splitlines()
        lines.append(f"{name}: {first[0] if first else '?'}")
    return lines
