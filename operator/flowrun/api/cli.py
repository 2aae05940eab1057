"""`flowrun crd`: print the FlowRun CustomResourceDefinition (`flowrun crd | kubectl apply -f -`).

`crds/flowrun.yaml` in the repository is this output; regenerate it with
`flowrun crd > crds/flowrun.yaml` after changing `flowrun.api.models`.
"""

from __future__ import annotations

import argparse
import json
import sys

from flowrun.api import crd, reference

HELP = "print the FlowRun CustomResourceDefinition"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        "-o",
        choices=("yaml", "json"),
        default="yaml",
        help="output format (default: yaml)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="print the field reference as Markdown instead (docs/flowrun-reference.md)",
    )


def main(args: argparse.Namespace) -> int:
    if args.reference:
        sys.stdout.write(reference.render())
    elif args.output == "json":
        sys.stdout.write(json.dumps(crd.build(), indent=2) + "\n")
    else:
        sys.stdout.write(crd.to_yaml())
    return 0
