"""`flowrun crd`: print the FlowRun CRD, its admission policy and the FlowTemplate CRD
(`| kubectl apply -f -`).

The output is four documents: the FlowRun CustomResourceDefinition, the
ValidatingAdmissionPolicy that keeps its `spec` immutable except `cancel`, its binding, and the
FlowTemplate CustomResourceDefinition. `crds/flowrun.yaml` in the repository is
this output; regenerate it with `flowrun crd > crds/flowrun.yaml` after changing
`flowrun.api.models`.
"""

from __future__ import annotations

import argparse
import json
import sys

from flowrun.api import crd, reference

HELP = "print the FlowRun and FlowTemplate CustomResourceDefinitions and the admission policy"


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
        items = {"apiVersion": "v1", "kind": "List", "items": crd.documents()}
        sys.stdout.write(json.dumps(items, indent=2) + "\n")
    else:
        sys.stdout.write(crd.to_yaml())
    return 0
