"""kubectl and helm, bound to one kubeconfig: what the tests and the node demo call."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ToolFailed(AssertionError):
    """A kubectl/helm call that exited non-zero; in a test it reads as a failed assertion."""


@dataclass(frozen=True)
class Tool:
    """A kubectl or helm invocation bound to one kubeconfig."""

    binary: Path
    kubeconfig: Path

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig)}
        result = subprocess.run(
            [str(self.binary), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ToolFailed(
                f"{self.binary.name} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self(*args, "-o", "json", **kwargs).stdout)
