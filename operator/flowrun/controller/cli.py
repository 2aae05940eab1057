"""`flowrun operator`: run the operator (kopf) in this process until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf

from flowrun.controller import app, kopf_namespaces
from flowrun.controller import metrics as metrics_mod
from flowrun.controller import settings as settings_mod

HELP = "run the operator"


def configure(parser: argparse.ArgumentParser) -> None:
    settings_mod.configure(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")


def main(args: argparse.Namespace) -> int:
    settings = settings_mod.from_args(args)
    # The API server stores JSON nested up to 10,000 levels; kopf deep-copies and diffs every
    # body recursively (2-3 frames a level) before any handler runs. With room for that, the
    # handler refuses a too-deep spec with a reason (flowrun.api.validation.MAX_NESTING)
    # instead of kopf failing on it forever. Python frames live on the heap (3.11+).
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 40_000))
    kopf.configure(verbose=bool(args.verbose), log_format=kopf.LogFormat.PLAIN)
    # One line per HTTP request (kr8s uses httpx) would drown the operator's own log.
    for noisy in ("distributed", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    kopf_namespaces.take_in_listed_namespaces()
    metrics = metrics_mod.Metrics()
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port)
    liveness = (
        f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    )
    asyncio.run(
        kopf.operator(
            registry=app.build_registry(settings, metrics),
            standalone=not settings.peering,
            clusterwide=settings.clusterwide,
            namespaces=settings.namespaces,
            liveness_endpoint=liveness,
            memo=kopf.Memo(),
        )
    )
    return 0
