"""Loaded at start-up by an operator started with this folder on PYTHONPATH (only
test_namespace_discovery does): kopf's watch-stream on namespaces starts SLOW_NAMESPACE_WATCH
seconds after kopf's first listing of namespaces, and the file SLOW_NAMESPACE_WATCH_MARK is
written when that pause begins. A test can then create a namespace between the two listings,
which otherwise happens only by chance (about one namespace in 400 created during start-up)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from kopf._core.reactor import queueing

_watcher = queueing.watcher


async def _slow_watcher(*, resource: Any, **kwargs: Any) -> None:
    if resource.plural == "namespaces":
        Path(os.environ["SLOW_NAMESPACE_WATCH_MARK"]).write_text("")
        await asyncio.sleep(float(os.environ["SLOW_NAMESPACE_WATCH"]))
    await _watcher(resource=resource, **kwargs)


queueing.watcher = _slow_watcher  # type: ignore[assignment]
