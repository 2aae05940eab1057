"""The `flowrun` command: one entry point, one subcommand module per room.

Each subcommand lives with the code it drives (`flowrun.dev.cli`, `flowrun.api.cli`,
`flowrun.runlocal`, `flowrun.controller.cli`) and exposes `HELP`, `configure(parser)`
and `main(args) -> int`. Modules are imported only when their subcommand is parsed, so
`flowrun dev up` does not pay for importing kopf or distributed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("flowrun.runlocal", "run a FlowRun manifest locally, without a cluster"),
    "operator": ("flowrun.controller.cli", "run the operator"),
    "runner": ("flowrun.controller.runner_cli", "run one FlowRun here (a runner Pod's command)"),
    "crd": ("flowrun.api.cli", "print the FlowRun CustomResourceDefinition"),
    "dev": ("flowrun.dev.cli", "a real local Kubernetes control plane: build, up, down, status"),
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name][0])


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowrun", description="Run Prefect-Core-style flows on ephemeral Dask clusters."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen subcommand's module is imported; the others keep a bare parser.
        if name == wanted:
            _load(name).configure(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    result: int = _load(args.command).main(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
