"""Plain Kubernetes object calls for the runner path: create if absent, get, list, delete, Events.

Plain HTTP verbs on kr8s' client (as `kube.py`), never kr8s' get-by-name (a LIST with a field
selector): the runner's identity may only `get` its own FlowRun by name, and the operator needs
no `list` where it only reads one object.
"""

from __future__ import annotations

import datetime
import json
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import kr8s

from flowrun.controller.kube import http_status

logger = logging.getLogger(__name__)

# kind -> (group/version, base path, plural)
KINDS: dict[str, tuple[str, str, str]] = {
    "ServiceAccount": ("v1", "/api", "serviceaccounts"),
    "ConfigMap": ("v1", "/api", "configmaps"),
    "Event": ("v1", "/api", "events"),
    "Pod": ("v1", "/api", "pods"),
    "Role": ("rbac.authorization.k8s.io/v1", "/apis", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "/apis", "rolebindings"),
    "Job": ("batch/v1", "/apis", "jobs"),
    "FlowRun": ("flowrun.dev/v1alpha1", "/apis", "flowruns"),
    "FlowTemplate": ("flowrun.dev/v1alpha1", "/apis", "flowtemplates"),
    "DaskCluster": ("kubernetes.dask.org/v1", "/apis", "daskclusters"),
    "DaskAutoscaler": ("kubernetes.dask.org/v1", "/apis", "daskautoscalers"),
    "DaskWorkerGroup": ("kubernetes.dask.org/v1", "/apis", "daskworkergroups"),
}

API_ERRORS = (kr8s.ServerError, httpx.HTTPStatusError)
# A refusal, or a server not reached: what a best-effort call logs and tries again.
CALL_ERRORS = (*API_ERRORS, httpx.TransportError)


async def _call(
    api: Any, method: str, kind: str, namespace: str, url: str = "", **kwargs: Any
) -> Any:
    version, base, plural = KINDS[kind]
    path = f"{plural}/{url}" if url else plural
    async with api.call_api(
        method, version=version, base=base, namespace=namespace, url=path, **kwargs
    ) as response:
        return response.json() if response.content else None


async def create(api: Any, obj: Mapping[str, Any]) -> bool:
    """Create `obj`; False when it exists already (a restarted operator adopts it)."""
    namespace = obj["metadata"]["namespace"]
    try:
        await _call(api, "POST", obj["kind"], namespace, content=json.dumps(obj))
    except API_ERRORS as exc:
        if http_status(exc) == 409:
            return False
        raise
    return True


async def get(api: Any, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One object by name (a plain GET), None when absent."""
    try:
        found: dict[str, Any] = await _call(api, "GET", kind, namespace, name)
    except API_ERRORS as exc:
        if http_status(exc) == 404:
            return None
        raise
    return found


async def list_labelled(api: Any, kind: str, namespace: str, selector: str) -> list[Any]:
    return await list_where(api, kind, namespace, {"labelSelector": selector})


async def list_where(api: Any, kind: str, namespace: str, selectors: dict[str, str]) -> list[Any]:
    """A list by `labelSelector` and/or `fieldSelector`."""
    found = await _call(api, "GET", kind, namespace, params=selectors)
    items: list[Any] = (found or {}).get("items") or []
    return items


async def watch_one(
    api: Any, kind: str, namespace: str, name: str, *, version: str | None, seconds: int
) -> AsyncIterator[dict[str, Any]]:
    """Watch events of one object by name (a field selector: RBAC's resourceNames apply), from
    `version`; the server ends the stream after `seconds`."""
    group_version, base, plural = KINDS[kind]
    params = {
        "watch": "true",
        "fieldSelector": f"metadata.name={name}",
        "timeoutSeconds": str(seconds),
    }
    if version:
        params["resourceVersion"] = version
    async with api.call_api(
        "GET",
        version=group_version,
        base=base,
        namespace=namespace,
        url=plural,
        params=params,
        stream=True,
    ) as response:
        async for line in response.aiter_lines():
            if line.strip():
                event: dict[str, Any] = json.loads(line)
                yield event


async def delete(api: Any, kind: str, namespace: str, name: str) -> bool:
    """Delete by name with background propagation; False when it was gone already."""
    body = json.dumps({"propagationPolicy": "Background"})
    try:
        await _call(api, "DELETE", kind, namespace, name, content=body)
    except API_ERRORS as exc:
        if http_status(exc) == 404:
            return False
        raise
    return True


async def merge_patch(
    api: Any, kind: str, namespace: str, name: str, body: Mapping[str, Any]
) -> None:
    """A JSON merge patch of one object by name."""
    headers = {"Content-Type": "application/merge-patch+json"}
    await _call(api, "PATCH", kind, namespace, name, content=json.dumps(body), headers=headers)


def event(
    involved: Mapping[str, Any], kind: str, reason: str, message: str, *, component: str
) -> dict[str, Any]:
    """A core v1 Event about `involved` (apiVersion, kind, name, namespace, uid)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{involved['name']}.", "namespace": involved["namespace"]},
        "involvedObject": dict(involved),
        "type": kind,
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": socket.gethostname()[:128],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


async def post_event(api: Any, obj: Mapping[str, Any]) -> None:
    """Events are best effort (as kopf's): a refused one is logged, never fatal."""
    try:
        await create(api, obj)
    except CALL_ERRORS as exc:
        logger.warning("event %s could not be posted: %s", obj.get("reason"), exc)


class ConfigMapLive:
    """A big run's live status (`flowrun.runs.companion.LiveSink`) as a ConfigMap's data: a
    merge patch; created when absent (the operator's in-process runs; a runner Pod's run finds
    it created by the operator and may only patch it)."""

    def __init__(self, api: Any, manifest: Mapping[str, Any]) -> None:
        self._api = api
        self._manifest = manifest

    async def patch_live(self, data: Mapping[str, str | None]) -> None:
        meta = self._manifest["metadata"]
        try:
            await merge_patch(
                self._api, "ConfigMap", meta["namespace"], meta["name"], {"data": data}
            )
        except API_ERRORS as exc:
            if http_status(exc) != 404:
                raise
            present = {k: v for k, v in data.items() if v is not None}
            await create(self._api, {**self._manifest, "data": present})

    async def read_live(self) -> dict[str, str]:
        """The companion's data (a restarted run's whole task map); empty when absent."""
        meta = self._manifest["metadata"]
        found = await get(self._api, "ConfigMap", meta["namespace"], meta["name"])
        return dict((found or {}).get("data") or {})
