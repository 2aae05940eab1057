"""The interface every Dask cluster provider implements, and the values that cross it.

The controller picks a provider from `spec.executor.dask.cluster`, calls `start` once per run
(also after an operator restart, when the provider should find the cluster again by its
deterministic name) and `close` in every outcome. Providers never see kopf or the FlowRun body:
they get plain values (`ClusterOptions`, `Owner`) so they stay testable without an operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

# dask-kubernetes appends "-scheduler" to the cluster name for the scheduler Service, and a
# Kubernetes name is at most 63 characters; the same bound keeps every provider's names equal.
MAX_CLUSTER_NAME_LEN = 63 - len("-scheduler")


@dataclass(frozen=True)
class Owner:
    """The FlowRun a cluster belongs to (enough for an ownerReference and labels)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class ClusterOptions:
    """What `spec.executor.dask` asks of the cluster, as plain values."""

    image: str | None = None
    workers: int = 1  # with `adapt`, the count the cluster starts with
    adapt: tuple[int, int] | None = None  # (minimum, maximum) adaptive workers
    resources: dict[str, Any] | None = None
    env: tuple[dict[str, Any], ...] = ()
    address: str | None = None
    startup_timeout: float = 300.0
    threads_per_worker: int = 2
    idle_timeout: int = 0
    extra_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterHandle:
    """A started (or re-found) cluster: where its scheduler listens."""

    name: str
    address: str
    dashboard: str | None = None
    reconnected: bool = False


class ClusterStartupError(RuntimeError):
    """The cluster did not become usable; `reason` is a CamelCase word for status and Events."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ClusterProvider(Protocol):
    """One instance per run: `start` then, in every outcome, `close`.

    `keeps_results` says whether task results survive an operator restart on this cluster.
    """

    kind: str
    keeps_results: bool

    async def start(self, name: str, options: ClusterOptions, owner: Owner) -> ClusterHandle: ...

    async def close(self) -> None: ...


def cluster_name(owner: Owner) -> str:
    """A deterministic, valid cluster name for a FlowRun: same FlowRun, same name.

    The UID prefix keeps a re-created FlowRun of the same name from adopting an old cluster.

    >>> cluster_name(Owner("flowrun.dev/v1alpha1", "FlowRun", "etl.daily", "ns", "0a1b2c3d-..."))
    'fr-etl-daily-0a1b2c3d'
    """
    base = re.sub(r"[^a-z0-9-]+", "-", owner.name.lower()).strip("-")
    suffix = re.sub(r"[^a-z0-9]", "", owner.uid.lower())[:8]
    room = MAX_CLUSTER_NAME_LEN - len("fr--") - len(suffix)
    return f"fr-{base[:room].rstrip('-')}-{suffix}".replace("--", "-")
