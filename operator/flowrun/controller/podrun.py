"""One FlowRun run by a runner Pod: the operator's side (the product path).

The operator never runs a flow here and is never a Dask client: it checks the spec, creates
Kubernetes objects owned by the FlowRun (the DaskCluster for cluster Kubernetes; the runner's
ServiceAccount, Role, RoleBinding and Job), then only watches them. The runner
(`runner_process`) writes the run's status and its end. The operator writes the end itself only
when the runner cannot: a runner that died without one (OOMKilled, an image that cannot start,
a Secret the kubelet cannot find, backoff exhausted, a Pod the API server refuses), or a
cancel/deadline the runner did not honour within the grace period. Every end, and deletion,
removes the objects it created; an operator that exits leaves a running run alone (a new
operator adopts it by name).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from flowrun.api import models, validation
from flowrun.api import status as status_mod
from flowrun.cluster import base as cluster_base
from flowrun.controller import (
    errors,
    kubeobjects,
    podcluster,
    policy,
    runner_lost,
    stopping,
)
from flowrun.controller import runner_objects as objects
from flowrun.controller.runbase import RunBase
from flowrun.runs import render
from flowrun.runs.outcome import TERMINAL, FlowRunError, Outcome
from flowrun.runs.plan import resolve_template

logger = logging.getLogger(__name__)

POLL = 2.0  # seconds between two looks at the runner's Job and Pods
PHASE_POLL = 0.2  # seconds between two looks at the phase in our copy of the FlowRun
RUNNER_ENDED = Outcome("", "RunnerEnded", "")  # the runner wrote the run's end itself


class PodRun(RunBase):
    """One FlowRun, from the operator's side, while a runner Pod runs it."""

    def __init__(self, ctx: policy.Context, *, body: kopf.Body, stopped: Any) -> None:
        super().__init__(ctx, body=body, stopped=stopped)
        self.owner = cluster_base.Owner(
            body["apiVersion"], body["kind"], self.name, self.namespace, self.uid
        )
        self.launched = False
        self.cluster: str | None = None  # the DaskCluster's name, when we created one

    def phase(self) -> str | None:
        phase: str | None = (self.body.get("status") or {}).get("phase")
        return phase

    async def execute(self) -> None:
        if self.initial_phase in TERMINAL:
            self.ctx.set_phase(self.uid, self.initial_phase)
            async with self.writer:
                await self.sweep()
            return
        outcome: Outcome | None = None
        async with self.writer:
            try:
                outcome = await self._lifecycle()
            except stopping.Stopped as stop:
                outcome = await self._stopped(stop.reason)
            except Exception as exc:  # every failure of a run ends here, mapped in one place
                outcome = errors.classify(exc)
                if outcome.reason == "InternalError":
                    logger.exception("FlowRun %s/%s failed", self.namespace, self.name)
            if policy.is_exiting(outcome) or outcome.retry:
                self._retry_later(outcome)
                return
            cleaned = True
            if self.launched or self.cluster is not None:
                cleaned = await self.cleanup()
            if outcome is not RUNNER_ENDED:
                self._finish(outcome)
        self.ctx.set_phase(self.uid, None if outcome.reason == stopping.DELETED else self.phase())
        if not cleaned and outcome.reason != stopping.DELETED:
            # The end is written; kopf runs this daemon again, and a finished run is swept.
            raise kopf.TemporaryError(f"cleanup of {self.name} is incomplete", delay=10)

    def _retry_later(self, outcome: Outcome) -> None:
        if outcome.retry:  # a transient API problem: kopf runs this daemon again
            self._event("Warning", outcome.reason, outcome.message)
            raise kopf.TemporaryError(outcome.message, delay=30)

    async def _lifecycle(self) -> Outcome:
        if self.initial_phase is None:
            self._phase("Pending", "Accepted", "Waiting to start.")
        self.ctx.set_phase(self.uid, self.initial_phase or "Pending")
        if (why := self.stop.reason()) is not None:  # e.g. created with `cancel: true`
            raise stopping.Stopped(why)
        spec = validation.parse_spec(self.body.get("spec") or {})  # no user code: names only
        # The runner reads the run's FlowTemplate copy, taken (and checked) here, before it.
        source = self.template_source()
        self._arm_deadline(spec)  # before the wait for a missing FlowTemplate, which it bounds too
        resolved, template = await self.until_template(lambda: resolve_template(spec, source))
        if template is not None:
            self.writer.update({"template": template})
            self.has_companion = self.go_live({"flow": {"tasks": resolved.flow.tasks or []}})
        image = objects.runner_image(spec, self.ctx.settings.default_image)
        if image is None:
            raise FlowRunError("ImageRequired", objects.NO_IMAGE)
        resources = objects.resources(self.ctx.settings.runner_resources, spec)
        await self.stop.race(self.ctx.slots.acquire())
        self.ctx.metrics.runs_in_flight.inc()
        try:
            # The runner first: its Pod and Python start while the scheduler's do (seconds
            # each); it connects once `status.cluster` names the scheduler, written when Ready.
            cluster = self._cluster_name(spec)
            address = podcluster.scheduler_address(cluster, self.namespace) if cluster else None
            await self._launch(spec, objects.RunnerConfig(image, address, resources=resources))
            if cluster is not None:
                await self.stop.race(self._start_cluster(spec, cluster))
            return await self.stop.race(self._follow(spec))
        finally:
            self.ctx.slots.release()
            self.ctx.metrics.runs_in_flight.dec()

    def _arm_deadline(self, spec: models.FlowRunSpec) -> None:
        if spec.active_deadline_seconds:
            started = status_mod.parse_rfc3339(self.start_time)
            self.stop.deadline_at = (started or time.time()) + spec.active_deadline_seconds

    def _cluster_name(self, spec: models.FlowRunSpec) -> str | None:
        """The DaskCluster's name when this run has one here (cluster Kubernetes): External and
        Local are the runner's own business."""
        dask = spec.executor.dask if spec.executor else None
        executor = spec.executor.type.value if spec.executor else "Dask"
        kind = (dask.cluster.value if dask else "Kubernetes") if executor == "Dask" else None
        return cluster_base.cluster_name(self.owner) if kind == "Kubernetes" else None

    async def _start_cluster(self, spec: models.FlowRunSpec, name: str) -> None:
        """The DaskCluster, created here as a plain object; its scheduler is waited for through
        the API server (Pod readiness), never by talking Dask to it. The runner waits for the
        scheduler's address in status: sent at once, not at the writer's next interval."""
        self.cluster = name
        started = await podcluster.start(
            self.ctx.api,
            spec,
            owner=self.owner,
            name=name,
            default_image=self.ctx.settings.default_image,
        )
        reason = "ClusterCreated" if started.created else "ClusterReconnected"
        self._event("Normal", reason, f"Dask cluster {name} (Kubernetes) {reason[7:].lower()}.")
        self.writer.update({"cluster": {"name": name, "scheduler": started.address}})
        await self.writer.flush()

    async def _launch(self, spec: models.FlowRunSpec, given: objects.RunnerConfig) -> None:
        """The runner's objects; `given` has its image, scheduler and resources."""
        api, owner, live_status = self.ctx.api, self.owner, self.ctx.settings.live_status
        self.launched = True
        for obj in (
            objects.service_account(owner),
            objects.role(owner),
            objects.role_binding(owner),
            # A big flow's live status: the runner may patch it, not create it.
            *([objects.live_status(owner)] if self.has_companion else []),
        ):
            await kubeobjects.create(api, obj)
        config = dataclasses.replace(
            given,
            deadline_at=self.stop.deadline_at,
            status_interval=self.ctx.settings.status_interval,
            grace_seconds=int(self.ctx.settings.cancel_grace) + 10,
            live_status=live_status,
        )
        if await kubeobjects.create(api, objects.job(owner, spec, config)):
            name = objects.runner_name(owner)
            self._event("Normal", "RunnerCreated", f"Runner Job {name} created ({config.image}).")

    async def _follow(self, spec: models.FlowRunSpec) -> Outcome:
        """Until the runner writes the run's end, or is found lost."""
        dask = spec.executor.dask if spec.executor else None
        startup = dask.startup_timeout_seconds if dask else runner_lost.STARTUP_DEFAULT
        grace = self.ctx.settings.runner_create_grace
        watch = runner_lost.RunnerWatch(self.ctx.api, self.owner, grace=grace, startup=startup)
        said: str | None = None
        while True:
            if self.phase() in TERMINAL:
                return RUNNER_ENDED
            lost = await watch.lost()
            said = self._say_waiting(said, watch)
            if lost is not None:
                # Its last status patch may still be on its way to our copy of the FlowRun.
                await asyncio.sleep(3 * POLL + self.ctx.settings.status_interval)
                return RUNNER_ENDED if self.phase() in TERMINAL else lost
            await self._until_ended(POLL)

    def _say_waiting(self, said: str | None, watch: runner_lost.RunnerWatch) -> str | None:
        """While no node takes the runner's Pod, status.message says why (the runner, not
        started, writes nothing): a run Pending or Running with no word is a hang to its user.
        Once a node took it, the message says so, only while its container has not started:
        a runner going may have written its own message by then."""
        waiting = watch.waiting
        if waiting == said or self.phase() in TERMINAL:
            return said
        if waiting is not None:
            if said is None:
                self._event("Warning", "RunnerUnschedulable", waiting)
            self.writer.update({"message": render.run_message(waiting)})
        elif watch.starting:
            job = objects.runner_name(self.owner)
            self.writer.update({"message": f"A node took the runner Pod of Job {job}."})
        return waiting

    async def _until_ended(self, seconds: float) -> None:
        """Sleep up to `seconds`, less when the runner's end reaches our copy of the FlowRun
        (kopf keeps `body` current; no API call): cleanup starts then, not at the next look."""
        until = time.monotonic() + seconds
        while self.phase() not in TERMINAL and time.monotonic() < until:
            await asyncio.sleep(PHASE_POLL)

    async def _stopped(self, why: str) -> Outcome:
        outcome = stopping_outcome(why, self.body)
        if why in (stopping.CANCEL_REQUESTED, stopping.DEADLINE_EXCEEDED) and self.launched:
            # The runner sees the same cancel or deadline: let it end the run with its tasks.
            grace = self.ctx.settings.cancel_grace + 10
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.phase() not in TERMINAL:
                await asyncio.sleep(0.5)
            if self.phase() in TERMINAL:
                return RUNNER_ENDED
            logger.warning("runner of %s/%s did not stop in %gs", self.namespace, self.name, grace)
        return outcome

    async def cleanup(self) -> bool:
        """Delete what the run created (each by its deterministic name; absent ones are fine).
        False when something could not be deleted (said in the log): the caller looks again."""
        name = objects.runner_name(self.owner)
        cleaned = True
        # The Job last: while it is there, a retry or a restarted operator's sweep knows there is
        # more to delete (and a runner still going loses its rights before its Pod is stopped).
        # So the first failure stops the runner's part: a Job deleted after a failed delete
        # would leave that object for good (a sweep looks for the Job only).
        for kind in ("RoleBinding", "Role", "ServiceAccount", "Job"):
            try:
                await kubeobjects.delete(self.ctx.api, kind, self.namespace, name)
            except Exception as exc:  # cleanup must not mask the outcome; say it loudly
                logger.warning("deleting %s %s/%s failed: %s", kind, self.namespace, name, exc)
                cleaned = False
                break
        if self.cluster is not None:
            cleaned = await self._delete_cluster(self.cluster) and cleaned
        return cleaned

    async def sweep(self) -> None:
        """A finished run whose cleanup was cut short (operator killed): what it may have left.
        Cheap for the others: one GET (the runner's Job goes last; the chart grants `get` on
        Jobs, not on ServiceAccounts), and the DaskCluster only when status says one was made
        and not deleted."""
        status = self.body.get("status") or {}
        name = objects.runner_name(self.owner)
        try:
            left = await kubeobjects.get(self.ctx.api, "Job", self.namespace, name)
        except Exception as exc:
            # Nothing else would look again (the garbage collector only acts when the FlowRun
            # is deleted): kopf runs this daemon again.
            message = f"sweeping the runner of {self.name} failed: {exc}"
            raise kopf.TemporaryError(message, delay=10) from exc
        if left is not None and not await self.cleanup():
            raise kopf.TemporaryError(f"cleanup of {self.name} is incomplete", delay=10)
        cluster = cluster_base.cluster_name(self.owner)
        swept = not policy.needs_sweep(self.body.get("spec") or {}, status)
        if not swept and not await self._delete_cluster(cluster):
            raise kopf.TemporaryError(f"deleting the cluster of {self.name} failed", delay=10)

    async def _delete_cluster(self, name: str) -> bool:
        try:
            if await podcluster.delete(self.ctx.api, name, self.namespace):
                self._event("Normal", "ClusterDeleted", "Dask cluster deleted.")
            self.writer.update(policy.CLUSTER_DELETED)  # a restart has nothing to sweep
        except Exception as exc:
            logger.warning("deleting DaskCluster %s/%s failed: %s", self.namespace, name, exc)
            return False
        return True

    def _event(self, kind: str, reason: str, message: str) -> None:
        post = kopf.info if kind == "Normal" else kopf.warn
        post(self.body, reason=reason, message=render.run_message(message))

    def _phase(self, phase: str, reason: str, message: str) -> None:
        status = self.body.get("status") or {}
        now = time.time()
        started = status_mod.parse_rfc3339(self.start_time or status.get("startTime"))
        fragment = render.phase_fragment(
            phase,
            now=now,
            reason=reason,
            message=message,
            generation=self.body["metadata"].get("generation"),
            start_time=(started or now) if phase == "Running" else None,
            completion_time=now if phase in TERMINAL else None,
            previous_conditions=status.get("conditions") or [],
        )
        # Keys this phase does not set are left as they are (None would delete them).
        self.writer.update({k: v for k, v in fragment.items() if v is not None})
        self.ctx.set_phase(self.uid, phase)

    def _finish(self, outcome: Outcome) -> None:
        self._phase(outcome.phase, outcome.reason, outcome.message)
        kind = "Normal" if outcome.phase == "Succeeded" else "Warning"
        self._event(kind, outcome.reason, outcome.message)


def stopping_outcome(why: str, body: Mapping[str, Any]) -> Outcome:
    seconds = (body.get("spec") or {}).get("activeDeadlineSeconds")
    if why == stopping.OPERATOR_EXITING:
        return Outcome("Running", why, "")
    return policy.stopped_outcome(why, seconds)
