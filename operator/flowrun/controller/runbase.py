"""What the operator knows of one FlowRun before it runs it, on either path (in-process or a
runner Pod): its identity, the status it found, its stop signal and its status writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import kopf

from flowrun.cluster import base as cluster_base
from flowrun.controller import kubeobjects, policy, snapshot, stopping
from flowrun.controller import runner_objects as objects
from flowrun.runs import companion
from flowrun.runs.plan import TemplateMissing
from flowrun.runs.statuswriter import StatusWriter

T = TypeVar("T")
logger = logging.getLogger(__name__)

# Client-side `kubectl apply` keeps a copy of the whole object in this annotation.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# A FlowRun applied before its FlowTemplate (GitOps applies in any order) looks again after
# this many seconds, doubling up to the maximum.
TEMPLATE_RETRY_FIRST = 1.0
TEMPLATE_RETRY_MAX = 30.0


class RunBase:
    # The operator takes a run's FlowTemplate copy; its runner Pod may only read it.
    takes_template_copy = True

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
        self.companion: kubeobjects.ConfigMapLive | None = None
        self.has_companion = self.go_live(body.get("spec") or {})
        self.big = self.has_companion  # an inline flow's size (a template's is known later)

    def _owner(self) -> cluster_base.Owner:
        body = self.body
        return cluster_base.Owner(
            body["apiVersion"], body["kind"], self.name, self.namespace, self.uid
        )

    def go_live(self, spec: Mapping[str, Any]) -> bool:
        """Routine progress to a small ConfigMap when the flow of `spec` (inline, or a template's
        copied) is big: every write of this FlowRun costs the API server the whole object, its
        bounded task states included (flowrun.runs.companion)."""
        live_status = self.ctx.settings.live_status
        if not live_status.is_big(spec):
            return False
        manifest = objects.live_status(self._owner())
        self.companion = kubeobjects.ConfigMapLive(self.ctx.api, manifest)
        self.writer.set_live(self.companion, live_status.refresh)
        self.writer.update({"statusConfigMap": manifest["metadata"]["name"]})
        return True

    async def read_known_tasks(self) -> dict[str, Any]:
        """The finished tasks a restarted run takes over: its FlowRun's `status.tasks` and, for
        a big run, its companion's whole map (the FlowRun lists only part of it)."""
        listed = dict(self.initial_status.get("tasks") or {})
        if self.companion is None or self.initial_phase is None:
            return listed
        try:
            data = await self.companion.read_live()
        except kubeobjects.API_ERRORS as exc:  # e.g. a runner Role from before it could `get`
            logger.warning("the task map of %s/%s could not be read, tasks the FlowRun does not "
                           "list run again: %s", self.namespace, self.name, exc)  # fmt: skip
            return listed
        return companion.known_tasks(listed, data)

    def template_source(self) -> snapshot.Snapshots:
        """Where this run's FlowTemplate copy is (the operator takes it on first use)."""
        return snapshot.Snapshots(self.ctx.api, self._owner(), create=self.takes_template_copy)

    async def until_template(self, step: Callable[[], Awaitable[T]]) -> T:
        """`step` (which resolves the run's FlowTemplate), again with backoff while the template
        does not exist: the run stays Pending, says why once (status message, Warning Event),
        and stops waiting when it is cancelled or deleted."""
        delay, said = TEMPLATE_RETRY_FIRST, False
        while True:
            try:
                return await step()
            except TemplateMissing as missing:
                if not said:
                    self._phase("Pending", missing.reason, missing.message)
                    self._event("Warning", missing.reason, missing.message)
                    await self.writer.flush()
                    said = True
            await self.stop.race(asyncio.sleep(delay))
            delay = min(delay * 2, TEMPLATE_RETRY_MAX)

    def _phase(self, phase: str, reason: str, message: str) -> None:
        raise NotImplementedError

    def _event(self, kind: str, reason: str, message: str) -> None:
        raise NotImplementedError

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
