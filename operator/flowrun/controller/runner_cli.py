"""`flowrun runner`: run one FlowRun in this process (the runner Pod's command).

Started by the operator in a Job of the FlowRun, with the run's identity and environment
(`flowrun.controller.runner_objects`); not meant to be started by hand, but it works anywhere
`KUBECONFIG` (or a Pod's ServiceAccount) reaches the API server, as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import re
import sys
from collections.abc import Mapping
from types import ModuleType

from flowrun.runs.masked_fds import mask_process
from flowrun.runs.secrets import Masker

HELP = "run one FlowRun here (the command of its runner Pod)"
# Client libraries kopf imports at its own import when they are installed (dask-kubernetes brings
# them), only to recognise their objects; the runner never hands kopf any. Importing them is
# about half of the runner's start-up (benchmarks/README.md, "The product path on a real node").
KOPF_OPTIONAL = ("pykube", "kubernetes", "kubernetes_asyncio")
# The value of spec.parametersFrom[index], set by the kubelet from the Secret (runner_objects
# writes the Pod's env with this name; it lives here so the runner reads it before any import).
SECRET_ENV = "FLOWRUN_SECRET_{index}"
_SECRET_NAME = re.compile(re.escape(SECRET_ENV).replace(re.escape("{index}"), "[0-9]+"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")


def load_runner() -> ModuleType:
    """`runner_process`, imported with kopf's optional clients hidden; a flow's own code can
    still import them afterwards (the blocks are lifted)."""
    blocked = [name for name in KOPF_OPTIONAL if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        return importlib.import_module("flowrun.controller.runner_process")
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def env_masker(env: Mapping[str, str]) -> Masker:
    """The run's masker from the secret values in the environment: known at start, before the
    spec is read or any of the flow's code is imported."""
    return Masker(value for name, value in env.items() if _SECRET_NAME.fullmatch(name))


def main(args: argparse.Namespace) -> int:
    # For the process's whole life: the uncaught-exception traceback is printed after main
    # returns, and a crash's last lines become the FlowRun's RunnerFailed message. The whole
    # process, descriptors too: it is this run's alone.
    mask_process(env_masker(os.environ))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    runner_process = load_runner()
    code: int = asyncio.run(runner_process.run_once(dict(os.environ)))
    return code
