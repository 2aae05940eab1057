"""What the operator knows of one FlowRun before it runs it, on either path (in-process or a
runner Pod): its identity, the status it found, its stop signal and its status writer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from flowrun.controller import policy, stopping
from flowrun.runs.statuswriter import StatusWriter


class RunBase:
    def __init__(self, ctx: policy.Context, *, body: kopf.Body, stopped: Any) -> None:
        self.ctx = ctx
        self.body = body
        meta = body["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        status: Mapping[str, Any] = body.get("status") or {}
        self.initial_status: dict[str, Any] = dict(status)
        self.initial_phase: str | None = status.get("phase")
        self.start_time: str | None = status.get("startTime")
        self.stop = stopping.Stop(stopped=stopped, body=body)
        self.writer = StatusWriter(
            ctx.sink,
            namespace=self.namespace,
            name=self.name,
            interval=ctx.settings.status_interval,
            metrics=ctx.metrics,
        )
