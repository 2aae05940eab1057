"""The life of one FlowRun, run by a kopf daemon (one asyncio task per FlowRun).

kopf runs one handler per object at a time, so the hours a flow may take live in a daemon, not
in a create handler: deletion and `spec.cancel` stay observable while it runs. Per run:
plan (semantic checks) -> wait for a concurrency slot -> start or reconnect the Dask cluster
-> the FlowRunner on its own thread -> final status. The cluster is closed in every outcome,
except when the operator itself is exiting: then the run is left Running for the next operator
to resume, and a Kubernetes cluster is kept for it to reconnect to.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import kopf

from flowrun import cluster
from flowrun.api import status as status_mod
from flowrun.cluster.kubernetes import delete_daskcluster
from flowrun.controller import errors, policy, stopping
from flowrun.controller.clusteropts import cluster_options
from flowrun.controller.runbase import RunBase
from flowrun.engine.events import TaskEvent
from flowrun.runs import render
from flowrun.runs.execute import Runner, RunResult
from flowrun.runs.outcome import TERMINAL
from flowrun.runs.plan import Policy, RunPlan, build_plan

logger = logging.getLogger(__name__)


class Run(RunBase):
    """One attempt at one FlowRun inside this operator process."""

    resumed_message = "Resumed after an operator restart."

    def __init__(self, ctx: policy.Context, *, body: kopf.Body, stopped: Any) -> None:
        super().__init__(ctx, body=body, stopped=stopped)
        self.known_tasks: dict[str, Any] = dict(self.initial_status.get("tasks") or {})
        self.conditions: list[Any] = list(self.initial_status.get("conditions") or [])
        self.cancel = threading.Event()
        self.plan: RunPlan | None = None
        self.tasks: render.TaskStatus | None = None
        self.provider: cluster.ClusterProvider | None = None
        self.frozen = False  # operator exiting: stop writing task states
        self.failure_events = policy.TaskFailureEvents()

    @property
    def generation(self) -> int | None:
        # kopf keeps `body` current: after `spec.cancel: true` (a new generation) the status must
        # say it observed that generation, or GitOps tools read the run as stale forever.
        generation: int | None = self.body["metadata"].get("generation")
        return generation

    @property
    def owner(self) -> cluster.Owner:
        return cluster.Owner(
            api_version=self.body["apiVersion"],
            kind=self.body["kind"],
            name=self.name,
            namespace=self.namespace,
            uid=self.uid,
        )

    # -- the whole life ---------------------------------------------------------------------

    async def execute(self) -> None:
        if self.initial_phase in TERMINAL:
            self.ctx.set_phase(self.uid, self.initial_phase)
            await self._sweep()
            return
        outcome: errors.Outcome | None = None
        results: RunResult | None = None
        async with self.writer:
            try:
                results = await self._lifecycle()
                self._settle_tasks(results)
                outcome = policy.end_of_flow(
                    results,
                    cancelled=self.cancel.is_set(),
                    stop_reason=self.stop.reason(),
                    deadline_seconds=self._deadline_seconds(),
                )
            except stopping.Stopped as stop:
                outcome = policy.stopped_outcome(stop.reason, self._deadline_seconds())
            except Exception as exc:  # every failure of a run ends here, mapped in one place
                outcome = errors.classify(exc)
                if outcome.reason == "InternalError":
                    logger.exception("FlowRun %s/%s failed", self.namespace, self.name)
            finally:
                self.cancel.set()  # whatever happened, the runner thread must not go on
                await self._close_cluster(keep=outcome is None or policy.is_exiting(outcome))
            if outcome is not None and not policy.is_exiting(outcome):
                self._finish(outcome, results)
            elif outcome is not None:
                self.writer.update(policy.HANDED_OVER)
        if outcome is not None and outcome.reason == stopping.DELETED:
            self.ctx.set_phase(self.uid, None)
        if outcome is not None and outcome.retry:
            raise kopf.TemporaryError(outcome.message, delay=30)

    async def _lifecycle(self) -> RunResult:
        if self.initial_phase is None:
            self._phase("Pending", "Accepted", "Waiting to start.")
        self.ctx.set_phase(self.uid, self.initial_phase or "Pending")
        if (why := self.stop.reason()) is not None:  # e.g. created with `cancel: true`: run nothing
            raise stopping.Stopped(why)
        if self.initial_phase is not None:
            await self._take_over()
        self._arm_deadline()  # before the wait for a missing FlowTemplate, which it bounds too
        self.plan = await self.until_template(
            lambda: build_plan(
                self.body.get("spec") or {},
                namespace=self.namespace,
                settings=Policy(allow_in_process=self.ctx.settings.allow_in_process),
                secrets=self.ctx.secrets,
                templates=self.template_source(),
            )
        )
        if self.plan.template is not None:
            self.writer.update({"template": self.plan.template})
            self.has_companion = self.go_live({"flow": self.plan.flow})
        self.known_tasks = await self.read_known_tasks()  # a big run's: its companion's too
        self.writer.set_masker(self.plan.masker)
        await self.stop.race(self.ctx.slots.acquire())
        self.ctx.metrics.runs_in_flight.inc()
        try:
            address = await self._start_cluster()
            if self.initial_phase != "Running":
                self._say_running()
            else:
                self.ctx.set_phase(self.uid, "Running")
                self._event("Normal", "Resumed", self.resumed_message)
            # Running is on the server before any task can crash this process: a run that
            # does so is then known as in flight, and its next takeover is counted.
            await self.writer.flush()
            return await self._run_flow(address)
        finally:
            self.ctx.slots.release()
            self.ctx.metrics.runs_in_flight.dec()

    def _say_running(self) -> None:
        """The run's first start: Running, and what its author should know about this run."""
        assert self.plan is not None
        self._phase("Running", "Running", "The flow is running.")
        self._event("Normal", "Running", "The flow is running.")
        if (doubled := self.client_side_copy()) is not None:
            self._event("Warning", "ClientSideApply", doubled)
        if self.plan.spec.runner is not None:
            self._event("Warning", "RunnerIgnored", policy.RUNNER_IGNORED)

    async def _take_over(self) -> None:
        """This run was in flight under an earlier operator: count the takeover (on the server
        before anything else runs), and end the run when operators keep dying under it."""
        fragment, error = policy.takeover(self.initial_status, self.ctx.settings.max_run_restarts)
        self.writer.update(fragment)
        if error is not None:
            raise error
        await self.writer.flush()

    def _deadline_seconds(self) -> int | None:
        # From the body, not the plan: known (and checked by the CRD's schema) before the plan.
        seconds = (self.body.get("spec") or {}).get("activeDeadlineSeconds")
        return seconds if isinstance(seconds, int) else None

    def _arm_deadline(self) -> None:
        seconds = self._deadline_seconds()
        if seconds:
            started = status_mod.parse_rfc3339(self.start_time)
            base = started if started is not None else time.time()
            self.stop.deadline_at = base + seconds

    # -- cluster ------------------------------------------------------------------------------

    async def _start_cluster(self) -> str | None:
        assert self.plan is not None
        if self.plan.executor != "Dask" or self.plan.cluster_kind is None:
            return None
        self.provider = cluster.provider_for(
            self.plan.cluster_kind,
            default_image=self.ctx.settings.default_image,
            local_processes=self.ctx.settings.local_processes,
        )
        name = cluster.cluster_name(self.owner)
        began = time.monotonic()
        handle = await self.stop.race(
            self.provider.start(name, self._cluster_options(), self.owner)
        )
        self.ctx.metrics.cluster_startup.labels(provider=self.provider.kind).observe(
            time.monotonic() - began
        )
        if self.provider.kind == "External":
            reason, what = "ClusterConnected", f"Dask scheduler {handle.address} (External)"
        elif handle.reconnected:
            reason, what = "ClusterReconnected", f"Dask cluster {name} reconnected"
        else:
            reason, what = "ClusterCreated", f"Dask cluster {name} ({self.provider.kind}) created"
        self._event("Normal", reason, f"{what}.")
        self.writer.update(
            {"cluster": {"name": name, "scheduler": handle.address, "dashboard": handle.dashboard}}
        )
        return handle.address

    def _cluster_options(self) -> cluster.ClusterOptions:
        assert self.plan is not None
        return cluster_options(self.plan.spec, default_image=self.ctx.settings.default_image)

    async def _sweep(self) -> None:
        """A finished run whose cleanup was cut short (operator killed) may have left its
        DaskCluster behind: delete it by its deterministic name (one GET when it is gone).
        This is what makes `ttlSecondsAfterFinished` hold even across crashes: clusters are
        normally deleted at the end of the run, well before any TTL."""
        if not policy.needs_sweep(self.body.get("spec") or {}, self.initial_status):
            return
        try:
            await delete_daskcluster(cluster.cluster_name(self.owner), self.namespace, timeout=30)
        except Exception as exc:  # best effort: the garbage collector remains the backstop
            logger.warning("sweeping the Dask cluster of %s failed: %s", self.name, exc)

    async def _close_cluster(self, *, keep: bool) -> None:
        provider, self.provider = self.provider, None
        if provider is None:
            return
        if keep and provider.keeps_results:
            return  # the next operator reconnects to it by name
        logger.info("closing the Dask cluster of %s/%s", self.namespace, self.name)
        try:
            await provider.close()
        except Exception as exc:  # cleanup must not mask the run's outcome; say it loudly
            logger.exception("closing the Dask cluster of %s/%s failed", self.namespace, self.name)
            self._event("Warning", "ClusterDeleteFailed", str(exc))
            return
        if provider.kind != "External":
            self._event("Normal", "ClusterDeleted", "Dask cluster deleted.")
            self.writer.update(policy.CLUSTER_DELETED)  # a restart has nothing to sweep

    # -- the runner thread --------------------------------------------------------------------

    async def _run_flow(self, address: str | None) -> RunResult:
        assert self.plan is not None
        plan = self.plan
        loop = asyncio.get_running_loop()
        # Callbacks from the runner thread run in the daemon's context: kopf.event needs it.
        context = contextvars.copy_context()
        inline = [t["name"] for t in plan.flow.get("tasks", [])]
        if inline:
            self._track(inline)

        def on_graph(names: list[str]) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._track, names, context=context)

        def on_event(event: TaskEvent) -> None:
            # RuntimeError: the loop is gone because the operator is exiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_event, event, context=context)

        runner = Runner(
            plan,
            address=address,
            cancel=self.cancel,
            on_event=on_event,
            on_graph=on_graph,
            known_tasks=self.known_tasks,
            publish_prefix=f"flowrun/{self.namespace}/{self.name}/{self.uid}/",
        )
        done: asyncio.Future[RunResult] = loop.create_future()

        def target() -> None:
            result: RunResult | None = None
            error: BaseException | None = None
            try:
                result = runner.run()
            except BaseException as exc:  # handed to the daemon, which maps it
                error = exc
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, done, result, error)

        thread = threading.Thread(target=target, name=f"flowrun:{self.name}", daemon=True)
        thread.start()
        try:
            return await self.stop.race(asyncio.shield(done))
        except stopping.Stopped as stop:
            logger.info("stopping %s/%s: %s", self.namespace, self.name, stop.reason)
            if stop.reason == stopping.OPERATOR_EXITING:
                self.frozen = True
            self.cancel.set()
            try:
                await asyncio.wait_for(asyncio.shield(done), self.ctx.settings.cancel_grace)
            except TimeoutError:
                logger.warning("runner of %s/%s did not stop in time", self.namespace, self.name)
            except Exception as exc:  # the run is being stopped; its error no longer decides
                logger.info("runner of %s ended with %s while stopping", self.name, exc)
            raise

    def _track(self, names: list[str]) -> None:
        if self.tasks is not None or self.plan is None:
            return
        self.tasks = render.TaskStatus(
            names,
            redact=self.plan.masker.text,
            sent=self.initial_status,
            known=self.known_tasks,
            lean=lambda: self.writer.live,  # a big run's FlowRun: its companion has the rest
        )
        self.writer.set_source(self.tasks.fragment)
        self.writer.set_task_map(self.tasks.task_map)
        self.writer.touch()

    def _settle_tasks(self, result: RunResult) -> None:
        """Fold each task's final state unless its live event already said the same."""
        if self.tasks is None:
            return
        for event in result.final_events:
            if self.tasks.builder.state_of(event.task) != event.state:
                self.tasks.apply(event)
        self.writer.touch()

    def _on_event(self, event: TaskEvent) -> None:
        if self.frozen or self.tasks is None:
            return
        self.tasks.apply(event)
        self.writer.touch()
        self.ctx.metrics.task_states.labels(state=event.state).inc()
        if self.plan is not None and self.failure_events.admit(event):
            message = self.plan.redact(event.message) or event.state
            self._event("Warning", "TaskFailed", f"Task {event.task} {event.state}: {message}")

    def _event(self, kind: str, reason: str, message: str) -> None:
        """Every Event of a run: secret values masked (as in status), then truncated."""
        text = render.run_message(message, self._redact())
        self._post(kind, reason, text)

    def _post(self, kind: str, reason: str, text: str) -> None:
        post = kopf.info if kind == "Normal" else kopf.warn
        post(self.body, reason=reason, message=text)

    def _redact(self) -> Callable[[str], str] | None:
        return self.plan.masker.text if self.plan is not None else None

    def _phase(self, phase: str, reason: str, message: str) -> None:
        now = time.time()
        started = status_mod.parse_rfc3339(self.start_time)
        fragment = render.phase_fragment(
            phase,
            now=now,
            reason=reason,
            message=message,
            generation=self.generation,
            start_time=(started or now) if phase == "Running" else None,
            completion_time=now if phase in TERMINAL else None,
            previous_conditions=self.conditions,
            redact=self._redact(),
        )
        self.conditions = fragment["conditions"]
        if phase == "Running":
            self.start_time = fragment["startTime"]
        # Keys this phase does not set are left as they are (None would delete them).
        self.writer.update({k: v for k, v in fragment.items() if v is not None})
        self.ctx.set_phase(self.uid, phase)

    def _finish(self, outcome: errors.Outcome, result: RunResult | None) -> None:
        if outcome.retry:
            self._event("Warning", outcome.reason, outcome.message)
            return
        if result is not None:
            self.writer.update(render.results_fragment(result.results, result.results_omitted))
        self._phase(outcome.phase, outcome.reason, outcome.message)
        started = status_mod.parse_rfc3339(self.start_time)
        if started is not None:
            self.ctx.metrics.run_duration.labels(phase=outcome.phase).observe(
                max(0.0, time.time() - started)
            )
        if outcome.phase == "Succeeded":
            self._event("Normal", "Succeeded", outcome.message)
        else:
            self._event("Warning", outcome.reason, outcome.message)


def _settle(
    future: asyncio.Future[RunResult], result: RunResult | None, exc: BaseException | None
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)
