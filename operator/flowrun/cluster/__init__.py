"""Dask cluster providers: where a FlowRun's tasks run.

`provider_for(kind)` returns a fresh provider for `spec.executor.dask.cluster`
(Kubernetes, Local or External); see `flowrun.cluster.base` for the protocol.
"""

from __future__ import annotations

from flowrun.cluster.base import (
    ClusterHandle,
    ClusterOptions,
    ClusterProvider,
    ClusterStartupError,
    Owner,
    cluster_name,
)
from flowrun.cluster.external import ExternalProvider
from flowrun.cluster.kubernetes import KubernetesProvider, build_cluster_spec
from flowrun.cluster.local import LocalProvider

KINDS = ("Kubernetes", "Local", "External")


def provider_for(
    kind: str, *, default_image: str | None = None, local_processes: bool = False
) -> ClusterProvider:
    """A new provider instance for one run.

    >>> provider_for("Local").keeps_results  # a LocalCluster dies with its operator
    False
    """
    if kind == "Kubernetes":
        return KubernetesProvider(default_image=default_image)
    if kind == "Local":
        return LocalProvider(processes=local_processes)
    if kind == "External":
        return ExternalProvider()
    raise ValueError(f"unknown Dask cluster kind {kind!r}; expected one of {', '.join(KINDS)}")


__all__ = [
    "KINDS",
    "ClusterHandle",
    "ClusterOptions",
    "ClusterProvider",
    "ClusterStartupError",
    "ExternalProvider",
    "KubernetesProvider",
    "LocalProvider",
    "Owner",
    "build_cluster_spec",
    "cluster_name",
    "provider_for",
]
