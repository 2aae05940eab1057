"""Adaptive workers (`spec.executor.dask.adapt`) without Kubernetes: what the cluster manifests
carry for the dask-kubernetes autoscaler, and a real LocalCluster that grows and shrinks."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import dask
import distributed

from flowrun import cluster
from flowrun.cluster import autoscaler, base, kubernetes

OWNER = base.Owner("flowrun.dev/v1alpha1", "FlowRun", "etl.daily", "team-a", "0a1b2c3d-4e5f-6789")
ROUTES = "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES"


def cluster_spec(**options: Any) -> dict[str, Any]:
    opts = base.ClusterOptions(image="acme/etl:1", **options)
    return kubernetes.build_cluster_spec("fr-x-1", owner=OWNER, options=opts)["spec"]


def env_of(part: dict[str, Any]) -> list[dict[str, str]]:
    env: list[dict[str, str]] = part["spec"]["containers"][0]["env"]
    return env


def test_an_adaptive_scheduler_serves_the_http_api_the_autoscaler_reads() -> None:
    spec = cluster_spec(workers=1, adapt=(0, 3), env=({"name": "X", "value": "1"},))
    scheduler_env = env_of(spec["scheduler"])
    # The run's own env comes after ours: it may still override the routes.
    assert [e["name"] for e in scheduler_env][:2] == [ROUTES, "X"]
    assert env_of(spec["worker"]) == [{"name": "X", "value": "1"}]
    ports = {p["name"]: p["port"] for p in spec["scheduler"]["service"]["ports"]}
    assert ports["http-dashboard"] == 8787  # the Service port the dask operator looks up
    assert spec["worker"]["replicas"] == 1


def test_a_fixed_cluster_is_unchanged() -> None:
    spec = cluster_spec(workers=2)
    assert ROUTES not in {e["name"] for e in env_of(spec["scheduler"])}
    assert autoscaler.build("fr-x-1", owner=OWNER, options=base.ClusterOptions()) is None


def test_the_autoscaler_is_labelled_and_owned_like_its_cluster() -> None:
    options = base.ClusterOptions(image="acme/etl:1", adapt=(1, 3))
    made = autoscaler.build("fr-x-1", owner=OWNER, options=options)
    assert made is not None
    daskcluster = kubernetes.build_cluster_spec("fr-x-1", owner=OWNER, options=options)
    assert made["metadata"]["ownerReferences"] == daskcluster["metadata"]["ownerReferences"]
    assert daskcluster["metadata"]["labels"].items() <= made["metadata"]["labels"].items()
    assert (made["apiVersion"], made["kind"]) == ("kubernetes.dask.org/v1", "DaskAutoscaler")
    assert made["metadata"]["name"] == made["spec"]["cluster"] == "fr-x-1"
    assert made["spec"] == {"cluster": "fr-x-1", "minimum": 1, "maximum": 3}


def test_the_routes_variable_gives_a_scheduler_its_adaptive_target_over_http() -> None:
    """The environment variable as dask parses it, on a real scheduler: the route the dask
    operator polls answers JSON (404 without it, and the operator would speak Dask RPC)."""
    (variable,) = autoscaler.scheduler_env((0, 3))
    parsed = dask.config.collect_env({variable["name"]: variable["value"]})
    routes = parsed["distributed"]["scheduler"]["http"]["routes"]
    assert "distributed.http.scheduler.api" in routes
    with (
        dask.config.set({"distributed.scheduler.http.routes": routes}),
        distributed.LocalCluster(
            n_workers=1, processes=False, dashboard_address="127.0.0.1:0"
        ) as local,
    ):
        port = local.scheduler.http_server.port
        url = f"http://127.0.0.1:{port}/api/v1/adaptive_target"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert json.load(answer) == {"workers": 0}


def test_a_local_cluster_grows_under_load_and_shrinks_after() -> None:
    """cluster Local (the in-process provider and a runner Pod's Local cluster): distributed's
    Adaptive within the range. Thirty one-second tasks ask for more than one worker."""

    async def scenario() -> None:
        local = cluster.provider_for("Local")
        options = base.ClusterOptions(workers=1, adapt=(1, 3), threads_per_worker=2)
        handle = await local.start("fr-t-adapt", options, OWNER)
        try:
            async with distributed.Client(handle.address, asynchronous=True) as client:

                async def count() -> int:
                    return len((await client.scheduler.identity())["workers"])

                assert await count() == 1
                futures = client.map(time.sleep, [1.0] * 30, pure=False)
                peak = await wait_async(count, lambda n: n > 1, timeout=60)
                await client.gather(futures)
                del futures
                after = await wait_async(count, lambda n: n == 1, timeout=60)
            assert peak > 1
            assert after == 1
        finally:
            await local.close()

    asyncio.run(scenario())


async def wait_async(read: Any, ok: Any, *, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        value: int = await read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"last value {value}")
        await asyncio.sleep(0.2)
