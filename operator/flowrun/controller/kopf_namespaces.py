"""A namespace that matches the operator's globs is watched even when it appeared while kopf
was listing namespaces.

kopf (1.45) lists namespaces once, then starts a watch-stream on them, which lists them again
and takes in only the events that follow that second listing: it skips the listing itself, as
it does for CRDs. A namespace created between the two listings (in practice: right after the
operator starts, or while the stream re-lists after its resource version expired) then matches
the globs but is never watched, and its FlowRuns never run, until the operator restarts.

The fix takes every listed namespace in, as the first listing does. It replaces kopf's handler
of the namespace stream (a private name, looked up when the stream starts); if a kopf release
renames it, the operator logs that and runs as before.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from kopf._core.reactor import observation

log = logging.getLogger(__name__)

_NAME = "process_discovered_namespace_event"
_KOPFS = getattr(observation, _NAME, None)


async def process_namespace_event(
    *, raw_event: Any, namespaces: Collection[Any], insights: Any, **kwargs: Any
) -> None:
    """kopf's handler, which also takes in a listed namespace (an event of type None)."""
    if raw_event["type"] is None:
        async with insights.revised:
            known = set(insights.namespaces)
            observation.revise_namespaces(
                raw_bodies=[raw_event["object"]], insights=insights, namespaces=namespaces
            )
            insights.revised.notify_all()
        for name in set(insights.namespaces) - known:
            log.info("Watching namespace %r, which appeared while namespaces were listed.", name)
        return
    assert _KOPFS is not None
    await _KOPFS(raw_event=raw_event, namespaces=namespaces, insights=insights, **kwargs)


def take_in_listed_namespaces() -> bool:
    """Install the handler; False (and a warning) if this kopf has no such name."""
    if _KOPFS is None or not hasattr(observation, "revise_namespaces"):
        log.warning(
            "kopf.%s not found: a namespace created while the operator lists namespaces may "
            "not be watched until it restarts",
            _NAME,
        )
        return False
    setattr(observation, _NAME, process_namespace_event)
    return True
