"""`flowrun operator` as a subprocess: the one harness of the tests, the demo and the benchmarks.

It runs in its own session under a given kubeconfig (KUBECONFIG is process-global, so running the
operator as another identity means another process), is ready when `/healthz` answers, and is
stopped by its own PID only (SIGTERM, then SIGKILL after a grace period), never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from flowrun.dev.controlplane import free_port
from flowrun.dev.waiting import wait_for


def tied_to_parent(argv: Sequence[str]) -> list[str]:
    """`argv` run so that it gets SIGTERM when the process that started it dies (a test run
    that is killed leaves no operator or Dask process behind). setpriv (util-linux) sets the
    parent-death signal and execs `argv` under the same PID; without setpriv, `argv` as is."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else list(argv)


class OperatorExited(AssertionError):
    """The operator process ended while it was expected to be running."""


class OperatorProcess:
    """`python -m flowrun.cli operator ARGS` with its output in `log`.

    `env` is added to this process's environment (or replaces it with `inherit_env=False`, for
    an operator that must not see the caller's FLOWRUN_* settings).
    """

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: Path | None = None,
        metrics: bool = True,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.args = list(args)
        self.cwd = cwd
        base = dict(os.environ) if inherit_env else {}
        self.env = {**base, **(env or {}), "KUBECONFIG": str(kubeconfig)}
        self.liveness = free_port()
        self.metrics_port = free_port() if metrics else 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, *, timeout: float = 60) -> OperatorProcess:
        cmd = [sys.executable, "-m", "flowrun.cli", "operator",
               f"--liveness-port={self.liveness}", *self.args]  # fmt: skip
        if self.metrics_port:
            cmd.append(f"--metrics-port={self.metrics_port}")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                tied_to_parent(cmd),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        wait_for(self.ready, timeout=timeout, what=f"the operator's /healthz (log: {self.log})")
        return self

    def ready(self) -> bool:
        """True when /healthz answers; OperatorExited if the process is gone."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise OperatorExited(f"the operator exited:\n{self.log_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness}/healthz", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text: str = resp.read().decode()
            return text

    def rss_mib(self) -> float:
        """Resident memory of the operator process (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, *, grace: float = 60) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
