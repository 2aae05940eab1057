"""The few direct Kubernetes API calls the controller makes (kopf does the watching).

kr8s, because dask-kubernetes already uses it: one HTTP client configuration for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kr8s
import kr8s.asyncio

from flowrun.api import models
from flowrun.controller.statuswriter import KubeStatusSink

GROUP_VERSION = f"{models.API_GROUP}/{models.API_VERSION}"
PLURAL = "flowruns"


async def connect() -> Any:
    return await kr8s.asyncio.api()


def status_sink(api: Any) -> KubeStatusSink:
    return KubeStatusSink(api, group_version=GROUP_VERSION, plural=PLURAL)


class KubeSecretReader:
    """Reads Secret data (base64 values) in the FlowRun's namespace; None when absent."""

    def __init__(self, api: Any) -> None:
        self._api = api

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        found = [obj async for obj in self._api.async_get("secrets", name, namespace=namespace)]
        if not found:
            return None
        data: Mapping[str, str] = found[0].raw.get("data") or {}
        return data
