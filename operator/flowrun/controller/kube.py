"""The few direct Kubernetes API calls the controller makes (kopf does the watching): the only
module of the controller that talks kr8s.

kr8s, because dask-kubernetes already uses it: one HTTP client configuration for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx
import kr8s
import kr8s.asyncio

from flowrun.api import crd, models
from flowrun.cluster import kr8s_session
from flowrun.runs.statuswriter import StatusGone, StatusRejected

logger = logging.getLogger(__name__)

GROUP_VERSION = f"{models.API_GROUP}/{models.API_VERSION}"
PLURAL = crd.PLURAL


# No request of ours may wait forever (kr8s' default: no timeout at all): the status writer
# waits for a patch in flight rather than abandon it, so a hung request would hang the run's end.
REQUEST_TIMEOUT = 30.0


async def connect() -> Any:
    api = await kr8s_session.private_api()
    api.timeout = REQUEST_TIMEOUT
    return api


def status_sink(api: Any) -> KubeStatusSink:
    return KubeStatusSink(api)


async def merge_patch(api: Any, namespace: str, name: str, patch: Mapping[str, Any],
                      *, subresource: str = "") -> None:  # fmt: skip
    """The one JSON merge patch of a FlowRun (no resourceVersion, so no conflicts)."""
    async with api.call_api(
        "PATCH",
        version=GROUP_VERSION,
        base="/apis",
        namespace=namespace,
        url=f"{PLURAL}/{name}{subresource}",
        content=_strict_json(patch),
        headers={"Content-Type": "application/merge-patch+json"},
    ):
        pass


class KubeStatusSink:
    """Patches `flowruns/status`; maps the API server's answers to the writer's exceptions."""

    def __init__(self, api: Any) -> None:
        self._api = api

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        try:
            await merge_patch(self._api, namespace, name, patch, subresource="/status")
        except (kr8s.ServerError, httpx.HTTPStatusError) as exc:
            code = http_status(exc)
            if code == 404:
                raise StatusGone(name) from exc
            if code in (400, 422):
                raise StatusRejected(str(exc)[:500]) from exc
            raise


def _strict_json(patch: Mapping[str, Any]) -> str:
    """The patch as JSON the API server accepts; one it would refuse is refused here."""
    try:
        return json.dumps(patch, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StatusRejected(f"not strict JSON: {exc}") from exc


def is_api_error(exc: BaseException) -> bool:
    """A failed API call (an answer, or none): transient for the run that met it."""
    return isinstance(exc, kr8s.ServerError | kr8s.APITimeoutError | httpx.TransportError)


def http_status(exc: Exception) -> int | None:
    """The HTTP status of an API error (kr8s wraps httpx's), None if there was no response."""
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


class KubeSecretReader:
    """Reads Secret data (base64 values) in the FlowRun's namespace; None when absent.

    A plain GET by name: kr8s' get-by-name LISTs with a field selector, which would need `list`
    on Secrets, and the operator must not be able to enumerate them (only `get`).

    The name never shapes the path: it must be a DNS-1123 subdomain (the CRD says so too, but
    this reader may be handed anything) and is percent-encoded as one path segment, so no
    `../../<namespace>/secrets/<name>` can reach outside the FlowRun's namespace.
    """

    def __init__(self, api: Any) -> None:
        self._api = api

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        if len(name) > 253 or not re.fullmatch(models.DNS1123_SUBDOMAIN, name):
            raise ValueError(f"Secret name {name!r} is not a DNS-1123 subdomain")
        segment = urllib.parse.quote(name, safe="")
        try:
            async with self._api.call_api(
                "GET", version="v1", namespace=namespace, url=f"secrets/{segment}"
            ) as response:
                body: dict[str, Any] = response.json()
        except (kr8s.ServerError, httpx.HTTPStatusError) as exc:
            if http_status(exc) == 404:
                return None
            if http_status(exc) == 403:  # RBAC's answer will not change by retrying
                raise PermissionError(f"the operator may not read it: {exc}") from exc
            raise
        data: Mapping[str, str] = body.get("data") or {}
        return data


async def nudge_when_done(api: Any, task: asyncio.Task[Any], namespace: str, name: str) -> None:
    """After a deleted FlowRun's daemon has finished, touch the object once.

    kopf releases its finalizer only when it processes the object again *after* the daemon is
    done; without change handlers nothing else would wake it before its cancellation backoff
    (minutes). One annotation patch is that wake-up; a gone object is fine.
    """
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait({task})
    patch = {"metadata": {"annotations": {f"{models.API_GROUP}/cleaned-up": "true"}}}
    try:
        await merge_patch(api, namespace, name, patch)
    except (kr8s.ServerError, httpx.HTTPError) as exc:
        if http_status(exc) != 404:  # gone already: nothing to wake
            logger.warning("could not wake kopf for %s/%s: %s", namespace, name, exc)
