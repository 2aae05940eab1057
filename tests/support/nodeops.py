"""The operator the runner-Pod tests on the node talk to: the Helm-installed operator Pod when the
session has one (`node_operator`, cluster-wide: then it is the only operator allowed), else the
operator as a host process on the product path, watching one namespace.

Both give the tests the same few things: the operator's log, killing it, waiting for it to be
back, and whether a file exists where it runs (the hostile-scheduler test's marker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowrun.dev.operator_process import OperatorProcess
from flowrun.dev.waiting import wait_for

SELECTOR = "app.kubernetes.io/name=flowrun-operator"


class HostOperator:
    """`flowrun operator` as a process on this host (no --allow-in-process)."""

    def __init__(
        self, kubeconfig: Path, log_dir: Path, namespace: str, image: str, *extra: str
    ) -> None:
        self._kubeconfig = kubeconfig
        self._log_dir = log_dir
        self._args = ["-n", namespace, f"--default-image={image}", "--status-interval=0.5"]
        self._args += extra
        self.procs: list[OperatorProcess] = []

    def start(self) -> HostOperator:
        log = self._log_dir / f"operator-{len(self.procs)}.log"
        self.procs.append(OperatorProcess(self._kubeconfig, log, self._args).start())
        return self

    def log_text(self) -> str:
        return "\n".join(p.log_text() for p in self.procs)

    def kill(self) -> None:
        self.procs[-1].kill()

    def restart(self) -> None:
        self.start()

    def file_exists(self, path: str) -> bool:
        return Path(path).exists()

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


class PodOperator:
    """The Helm release's operator Pod (its Deployment replaces a killed one)."""

    def __init__(self, release: Any) -> None:
        self.release = release
        self.kubectl = release.kubectl

    def log_text(self) -> str:
        return str(self.release.operator_logs(tail=2000))

    def _pods(self) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = self.release.pods(self.release.namespace, SELECTOR)
        return pods

    def kill(self) -> None:
        self.kubectl(
            "delete",
            "pod",
            "-n",
            self.release.namespace,
            "-l",
            SELECTOR,
            "--grace-period=0",
            "--force",
            "--wait=false",
        )

    def restart(self) -> None:
        def ready() -> bool:
            return any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for p in self._pods()
                if not p["metadata"].get("deletionTimestamp")
                for c in p.get("status", {}).get("conditions", [])
            )

        wait_for(ready, timeout=180, what="the operator Pod to be back")

    def file_exists(self, path: str) -> bool:
        for pod in self._pods():
            out = self.kubectl(
                "exec",
                "-n",
                self.release.namespace,
                pod["metadata"]["name"],
                "--",
                "test",
                "-e",
                path,
                check=False,
            )
            if out.returncode == 0:
                return True
        return False

    def stop(self) -> None:
        return None
