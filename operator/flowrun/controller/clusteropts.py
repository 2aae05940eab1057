"""The Dask cluster a FlowRun asks for, as the cluster providers' `ClusterOptions`.

Operator-only: `flowrun run` starts a LocalCluster or connects to an External address itself.
"""

from __future__ import annotations

from flowrun.api import models
from flowrun.cluster import ClusterOptions


def cluster_options(spec: models.FlowRunSpec, *, default_image: str | None) -> ClusterOptions:
    executor = spec.executor or models.Executor.model_validate({})
    dask = executor.dask or models.DaskSpec.model_validate({})
    resources = dask.resources.model_dump(exclude_none=True) if dask.resources else None
    return ClusterOptions(
        image=dask.image or default_image,
        workers=dask.worker_count(),
        adapt=(dask.adapt.minimum, dask.adapt.maximum) if dask.adapt else None,
        resources=resources or None,
        env=tuple({"name": e.name, "value": e.value} for e in dask.env or []),
        address=dask.address,
        startup_timeout=float(dask.startup_timeout_seconds),
    )
