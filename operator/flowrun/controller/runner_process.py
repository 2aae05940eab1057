"""`flowrun runner`: one FlowRun's run, in the runner Pod the operator created for it.

The same life as the operator's in-process daemon (`daemon.Run`: plan, cluster, the run
service on a thread, the bounded status writer, Events, the one outcome policy), so a run's
status, Events and `flowrun run` output stay the same; what differs is where it happens and
with which identity:

- the FlowRun is read and watched by name with the runner's per-run ServiceAccount, which may
  only read its own FlowRun and patch its status;
- `parametersFrom` values come from the environment (`secretKeyRef` env, set by the kubelet);
- on cluster Kubernetes the operator creates the DaskCluster beside the runner's Pod (both start
  at once) and writes `status.cluster.scheduler` when the scheduler Pod is Ready: the runner
  waits for that, then connects to the scheduler's Service by DNS (`FLOWRUN_SCHEDULER`);
  External and Local as in `flowrun run`;
- SIGTERM (the Pod deleted, the node drained) leaves the run Running, as an exiting operator
  does: the Job's next Pod resumes it from the results published on the cluster.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import signal
from collections.abc import Mapping
from typing import Any, cast

import kopf

from flowrun.cluster.kr8s_session import private_api
from flowrun.controller import daemon, kubeobjects, policy
from flowrun.controller import metrics as metrics_mod
from flowrun.controller import runner_objects as objects
from flowrun.controller import settings as settings_mod
from flowrun.controller.kube import KubeStatusSink
from flowrun.runs import companion
from flowrun.runs.outcome import TERMINAL

logger = logging.getLogger(__name__)

SCHEDULER_POLL = 0.1  # seconds between two looks at `live` (no API call) for the scheduler
POLL = 1.0  # seconds before a broken watch of the FlowRun is caught up and started again
WATCH_SECONDS = 300  # the API server ends a watch after this long; it is started again
GONE = "<gone>"
COMPONENT = "flowrun-runner"


class EnvSecretReader:
    """`parametersFrom` values as the kubelet put them into this process's environment."""

    def __init__(self, spec: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self._data: dict[str, dict[str, str]] = {}
        for i, item in enumerate(spec.get("parametersFrom") or []):
            ref = item.get("secretKeyRef") or {}
            value = env.get(objects.SECRET_ENV.format(index=i))
            if value is not None:
                encoded = base64.b64encode(value.encode()).decode()
                self._data.setdefault(ref.get("name", ""), {})[ref.get("key", "")] = encoded

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        return self._data.get(name)


class Terminated:
    """kopf's `stopped` flag for a daemon, set by SIGTERM: the run is left for the next Pod."""

    reason = None

    def __init__(self) -> None:
        self.flag = False

    def __bool__(self) -> bool:
        return self.flag


class PodRun(daemon.Run):
    """`daemon.Run` with the runner's identity: its own API calls, Events and cluster address."""

    resumed_message = "Resumed in a new runner Pod."

    def __init__(
        self,
        ctx: policy.Context,
        *,
        body: dict[str, Any],
        stopped: Terminated,
        scheduler: str | None,
        deadline_at: float | None,
    ) -> None:
        super().__init__(ctx, body=cast(kopf.Body, body), stopped=stopped)
        self.live = body
        self.scheduler = scheduler
        self.deadline_at = deadline_at
        self.posting: set[asyncio.Task[None]] = set()

    def _post(self, kind: str, reason: str, text: str) -> None:
        involved = {
            k: self.owner_ref[k] for k in ("apiVersion", "kind", "name", "namespace", "uid")
        }
        obj = kubeobjects.event(involved, kind, reason, text, component=COMPONENT)
        task = asyncio.get_running_loop().create_task(kubeobjects.post_event(self.ctx.api, obj))
        self.posting.add(task)
        task.add_done_callback(self.posting.discard)

    @property
    def owner_ref(self) -> dict[str, str]:
        return {
            "apiVersion": self.body["apiVersion"],
            "kind": self.body["kind"],
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }

    def _arm_deadline(self) -> None:
        # The operator's deadline (same clock base on both sides); else the spec's from now.
        if self.deadline_at is not None:
            self.stop.deadline_at = self.deadline_at
        else:
            super()._arm_deadline()

    async def _start_cluster(self) -> str | None:
        assert self.plan is not None
        if self.plan.executor == "Dask" and self.plan.cluster_kind == "Kubernetes":
            # The operator created the DaskCluster beside this Pod and writes its scheduler's
            # address into status once the scheduler Pod is Ready (or ends the run if never).
            await self.stop.race(self._scheduler_ready())
            return self.scheduler
        return await super()._start_cluster()

    async def _scheduler_ready(self) -> None:
        if not self._scheduler_in_status():
            logger.info("waiting for the operator to report the Dask scheduler Ready")
        while not self._scheduler_in_status():
            await asyncio.sleep(SCHEDULER_POLL)  # `follow` keeps `live` current (a watch)

    def _scheduler_in_status(self) -> bool:
        return bool(((self.live.get("status") or {}).get("cluster") or {}).get("scheduler"))

    takes_template_copy = False  # the operator took the copy before it created this runner

    async def _sweep(self) -> None:
        return None  # the operator deletes what the run left (this identity may not)

    async def _take_over(self) -> None:
        # Pending is the operator's word (the first runner has not run yet); a runner that finds
        # the run Running took it over from one that died: count that as a restart.
        if self.initial_phase == "Running":
            await super()._take_over()

    async def follow(self) -> None:
        """Keep `self.live` (what `Stop` reads) current by watching the FlowRun; a FlowRun gone
        is a deleted one. After any break in the watch, one GET catches up."""
        version: str | None = self.live["metadata"].get("resourceVersion")
        while True:
            try:
                async with asyncio.timeout(WATCH_SECONDS + 30):
                    async for event in kubeobjects.watch_one(
                        self.ctx.api,
                        "FlowRun",
                        self.namespace,
                        self.name,
                        version=version,
                        seconds=WATCH_SECONDS,
                    ):
                        version = self._apply(event)
                        if version == GONE:
                            return
            except kubeobjects.API_ERRORS as exc:  # refused: say so; polling still works
                logger.warning("watch of FlowRun %s refused: %s", self.name, exc)
            except Exception as exc:  # expired or unreachable: catch up below
                logger.debug("watch of FlowRun %s ended: %s", self.name, exc)
            await asyncio.sleep(POLL)
            try:
                found = await kubeobjects.get(self.ctx.api, "FlowRun", self.namespace, self.name)
            except Exception as exc:  # a blip of the API server: the next round will do
                logger.warning("reading FlowRun %s failed: %s", self.name, exc)
                continue
            version = self._apply({"type": "MODIFIED" if found else "DELETED", "object": found})
            if version == GONE:
                return

    def _apply(self, event: Mapping[str, Any]) -> str | None:
        """Take one watch event into `self.live`; the version to watch from next, or GONE."""
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":
            return None  # e.g. 410 Gone: watch again from now
        if event.get("type") == "DELETED" or obj.get("metadata", {}).get("uid") != self.uid:
            self.live.setdefault("metadata", {})["deletionTimestamp"] = "gone"
            return GONE
        self.live.clear()
        self.live.update(obj)
        version: str | None = obj["metadata"].get("resourceVersion")
        return version


def runner_settings(env: Mapping[str, str]) -> settings_mod.OperatorSettings:
    """What the operator passed on to this runner (runner_objects.RunnerConfig)."""
    live = companion.LivePolicy.from_env(env)
    interval = float(env.get(objects.ENV_STATUS_INTERVAL) or 1.0)
    return settings_mod.OperatorSettings(
        allow_in_process=True, status_interval=interval, live_status=live
    )


async def run_once(env: Mapping[str, str]) -> int:
    """The runner's whole life; the exit code tells the Job whether to try again."""
    namespace, name = env[objects.ENV_NAMESPACE], env[objects.ENV_NAME]
    api = await private_api()
    body = await kubeobjects.get(api, "FlowRun", namespace, name)
    if body is None or body["metadata"]["uid"] != env.get(objects.ENV_UID, body["metadata"]["uid"]):
        logger.info("FlowRun %s/%s is gone: nothing to run", namespace, name)
        return 0
    if (body.get("status") or {}).get("phase") in TERMINAL:
        logger.info("FlowRun %s/%s has ended already", namespace, name)
        return 0
    settings = runner_settings(env)
    ctx = policy.Context(
        settings=settings,
        api=api,
        metrics=metrics_mod.Metrics(),
        sink=KubeStatusSink(api),
        secrets=EnvSecretReader(body.get("spec") or {}, env),
        slots=asyncio.Semaphore(1),
    )
    stopped = Terminated()
    deadline = env.get(objects.ENV_DEADLINE_AT)
    run = PodRun(
        ctx,
        body=body,
        stopped=stopped,
        scheduler=env.get(objects.ENV_SCHEDULER),
        deadline_at=float(deadline) if deadline else None,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: setattr(stopped, "flag", True))
    follower = asyncio.create_task(run.follow())
    try:
        await run.execute()
    except kopf.TemporaryError as exc:  # e.g. the API server unreachable: the Job tries again
        logger.error("the run could not finish: %s", exc)
        return 1
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        if run.posting:
            await asyncio.wait(set(run.posting), timeout=10)
    # Stopped by SIGTERM with the run left Running: fail this Pod, so the Job starts another.
    return 143 if stopped else 0
