"""What the operator knows of one FlowRun before it runs it, on either path (in-process or a
runner Pod): its identity, the status it found, its stop signal and its status writer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from flowrun.cluster import base as cluster_base
from flowrun.controller import kubeobjects, policy, stopping
from flowrun.controller import runner_objects as objects
from flowrun.runs.statuswriter import StatusWriter

# Client-side `kubectl apply` keeps a copy of the whole object in this annotation.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


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
        live_status = ctx.settings.live_status
        self.big = live_status.is_big(body.get("spec") or {})
        if self.big:
            # Routine progress to a small ConfigMap: every write of this FlowRun costs the
            # API server the whole flow (flowrun.runs.companion).
            owner = cluster_base.Owner(
                body["apiVersion"], body["kind"], self.name, self.namespace, self.uid
            )
            live = kubeobjects.ConfigMapLive(ctx.api, objects.live_status(owner))
            self.writer.set_live(live, live_status.refresh)

    def client_side_copy(self) -> str | None:
        """What to tell the author of a big FlowRun applied client-side, before the flow grows
        past what that can apply (benchmarks/status_writes.py)."""
        copy = (self.body["metadata"].get("annotations") or {}).get(LAST_APPLIED)
        if not self.big or copy is None:
            return None
        return (
            f"This FlowRun carries a second copy of itself ({len(copy) // 1024} KiB) in the "
            f"annotation {LAST_APPLIED}, left by client-side kubectl apply: each of its status "
            "writes costs the API server that copy too, and once the FlowRun grows past 256 KiB "
            "(a few thousand inline tasks) the API server refuses to store it. Apply big inline "
            "flows with `kubectl apply --server-side` "
            "or `kubectl create` (Argo CD: the sync option ServerSideApply=true; Flux applies "
            "server-side)."
        )
