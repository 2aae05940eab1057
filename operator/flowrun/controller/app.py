"""The kopf wiring: settings applied at start-up and the per-FlowRun daemon.

Handlers are registered on a registry built here (no import-time side effects, no global
registry), so tests and the CLI each get their own. All behaviour lives in `daemon.Run`.

Only a daemon, no change handlers (on.create/update/delete): kopf then keeps no copy of the
spec in a `last-handled-configuration` annotation, which for a large inline flow would exceed
the API server's 256 KiB limit for all annotations together.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from flowrun.api import models
from flowrun.controller import daemon, kube, podrun, policy
from flowrun.controller import metrics as metrics_mod
from flowrun.controller import settings as settings_mod

FINALIZER = f"{models.API_GROUP}/finalizer"


def apply_kopf_settings(kopf_settings: Any, settings: settings_mod.OperatorSettings) -> None:
    # Silent watch streams (kopf#585, #698, #810) recover when the server or client ends them.
    kopf_settings.watching.server_timeout = settings.watch_server_timeout
    kopf_settings.watching.client_timeout = settings.watch_client_timeout
    kopf_settings.watching.connect_timeout = 10
    kopf_settings.networking.request_timeout = 30
    kopf_settings.networking.connect_timeout = 10
    # Our own names for what kopf keeps on the objects, so the chart's RBAC can name them.
    kopf_settings.persistence.finalizer = FINALIZER
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=models.API_GROUP
    )
    kopf_settings.posting.level = logging.INFO
    kopf_settings.execution.default_backoff = 5
    # Namespaced operators may not list namespaces; without this kopf retries that for about a
    # minute before falling back to the given names. Globs still need the scan to expand them.
    literal = not any(set(ns) & set("*?[]!") for ns in settings.namespaces)
    kopf_settings.scanning.disabled = not settings.clusterwide and literal


def run_for(ctx: policy.Context, body: kopf.Body, stopped: Any) -> daemon.Run | podrun.PodRun:
    """The product path runs every flow in a runner Pod of its FlowRun; only an operator started
    with --allow-in-process (machines without a node: tests, the non-root demo) runs it here."""
    if ctx.settings.allow_in_process:
        return daemon.Run(ctx, body=body, stopped=stopped)
    return podrun.PodRun(ctx, body=body, stopped=stopped)


def build_registry(
    settings: settings_mod.OperatorSettings, metrics: metrics_mod.Metrics
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        # In a pod: the ServiceAccount token; elsewhere: KUBECONFIG (as kubectl does).
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        apply_kopf_settings(settings, operator_settings)
        api = await kube.connect()
        memo["ctx"] = policy.Context(
            settings=operator_settings,
            api=api,
            metrics=metrics,
            sink=kube.status_sink(api),
            secrets=kube.KubeSecretReader(api),
            slots=asyncio.Semaphore(operator_settings.max_concurrent_runs),
        )

    operator_settings = settings

    @kopf.daemon(
        models.API_GROUP,
        models.API_VERSION,
        kube.PLURAL,
        registry=registry,
        id="flowrun",
        # Our daemon stops itself (cancel, cluster closed, final status) when `stopped` is
        # set; kopf cancels the task only after this backoff, as a last resort if that hangs.
        cancellation_backoff=settings.cancel_grace + 90,
        cancellation_timeout=30,
    )
    async def flowrun_daemon(
        body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
    ) -> None:
        ctx: policy.Context = memo["ctx"]
        try:
            await run_for(ctx, body, stopped).execute()
        finally:
            if body.get("metadata", {}).get("deletionTimestamp"):
                this = asyncio.current_task()
                assert this is not None
                meta = body["metadata"]
                nudge = kube.nudge_when_done(ctx.api, this, meta["namespace"], meta["name"])
                task = asyncio.create_task(nudge)
                ctx.background.add(task)
                task.add_done_callback(ctx.background.discard)

    return registry
