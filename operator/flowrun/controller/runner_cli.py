"""`flowrun runner`: run one FlowRun in this process (the runner Pod's command).

Started by the operator in a Job of the FlowRun, with the run's identity and environment
(`flowrun.controller.runner_objects`); not meant to be started by hand, but it works anywhere
`KUBECONFIG` (or a Pod's ServiceAccount) reaches the API server, as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from flowrun.controller import runner_process

HELP = "run one FlowRun here (the command of its runner Pod)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return asyncio.run(runner_process.run_once(dict(os.environ)))
