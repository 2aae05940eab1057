#!/usr/bin/env python
"""Engine benchmark: flowrun's executors against raw `distributed`, in one invocation.

Workloads (as in the shared Prefect peer benchmark, every task a no-op):
  chain-N   inc(0) -> inc -> ... -> inc                    (N task runs)
  fanout-N  root = inc(0); N x inc(root); total(children)  (N + 3 task runs)
  map-N     inc.map(range(N)); total(mapped)               (N + 2 task runs)
  mapmap-N  inc.map(inc.map(range(N))); total(mapped)      (2N + 3 task runs)

flowrun runs `run_until_finished(flow, executor=..., return_tasks=[final])` (the
operator's path: only the final result reaches the client) on LocalExecutor, SynchronousExecutor and
DaskExecutor (a LocalCluster of 2 worker processes x 1 thread, started once; each run
connects its own Client, as Prefect's DaskExecutor does). "raw" submits the same graphs
with `Client.submit` / `Client.map` (dist) and `dask.compute` (sync) on the same cluster.
Each cell is the min of --repeat runs; the ratio is flowrun / raw.

Mapped children run in batches on DaskExecutor (see flowrun.engine.executors.dask_batches):
`--n 100000 --workloads map --dask-only --repeat 1` is the map-100,000 against `Client.map`;
`--publish` also times DaskExecutor with `publish_prefix` (what the operator runs).

Memory checks (--memory): a map of --big-map children on DaskExecutor, and a flow that
passes --big-data-mib between tasks; the cluster then runs in a separate process, so the
client's RSS is the client's own.

    python benchmarks/engine.py                 # the timing table
    python benchmarks/engine.py --memory        # plus the memory checks
"""

from __future__ import annotations

import sys

# Running a script puts its folder first on sys.path, where benchmarks/operator.py would
# shadow the stdlib `operator` module: drop that entry before anything imports it.
if sys.path and sys.path[0].rstrip("/").endswith("benchmarks"):
    del sys.path[0]

import argparse
import logging
import multiprocessing
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import Any

import dask
import distributed
import psutil
from dask import delayed
from distributed import Client, LocalCluster

from flowrun import Flow, task, unmapped
from flowrun.engine import run_until_finished
from flowrun.executors import DaskExecutor, LocalExecutor, SynchronousExecutor


def inc(x: int) -> int:
    return x + 1


def total(xs: list[int]) -> int:
    return sum(xs)


inc_task = task(inc)
total_task = task(total)


def build(workload: str, n: int) -> tuple[Flow, Any, int]:
    with Flow(f"{workload}-{n}") as flow:
        if workload == "chain":
            final = inc_task(0)
            for _ in range(n - 1):
                final = inc_task(final)
            expected = n
        elif workload == "fanout":
            root = inc_task(0)
            final = total_task([inc_task(root) for _ in range(n)])
            expected = 2 * n
        elif workload == "mapmap":
            final = total_task(inc_task.map(inc_task.map(list(range(n)))))
            expected = sum(range(n)) + 2 * n
        else:
            final = total_task(inc_task.map(list(range(n))))
            expected = sum(range(n)) + n
    return flow, final, expected


def raw_dist(client: Client, workload: str, n: int) -> int:
    if workload == "chain":
        f = client.submit(inc, 0, pure=False)
        for _ in range(n - 1):
            f = client.submit(inc, f, pure=False)
        return int(f.result())
    if workload == "fanout":
        root = client.submit(inc, 0, pure=False)
        kids = [client.submit(inc, root, pure=False) for _ in range(n)]
        return int(client.submit(total, kids, pure=False).result())
    futs = client.map(inc, range(n), pure=False)
    if workload == "mapmap":
        futs = client.map(inc, futs, pure=False)
    return int(client.submit(total, futs, pure=False).result())


def raw_sync(workload: str, n: int) -> int:
    if workload == "chain":
        d = delayed(inc, pure=False)(0)
        for _ in range(n - 1):
            d = delayed(inc, pure=False)(d)
    elif workload == "fanout":
        root = delayed(inc, pure=False)(0)
        d = delayed(total, pure=False)([delayed(inc, pure=False)(root) for _ in range(n)])
    else:
        layer = [delayed(inc, pure=False)(i) for i in range(n)]
        if workload == "mapmap":
            layer = [delayed(inc, pure=False)(x) for x in layer]
        d = delayed(total, pure=False)(layer)
    return int(dask.compute(d, scheduler="synchronous")[0])


def best_of(repeat: int, run: Callable[[], int], expected: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = run()
        times.append(time.perf_counter() - t0)
        if got != expected:
            raise AssertionError(f"got {got}, expected {expected}")
    return min(times)


def timing_table(args: argparse.Namespace) -> None:
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    rows = []
    try:
        for workload in args.workloads.split(","):
            flow, final, expected = build(workload, args.n)

            def run_flow(executor: Any, flow: Flow = flow, final: Any = final) -> int:
                state = run_until_finished(flow, executor=executor, return_tasks=[final])
                return int(state.result[final].result)

            local = sync = raw_s = float("nan")
            if not args.dask_only:
                local = best_of(args.repeat, lambda: run_flow(LocalExecutor()), expected)
                sync = best_of(args.repeat, lambda: run_flow(SynchronousExecutor()), expected)
                raw_s = best_of(args.repeat, lambda w=workload: raw_sync(w, args.n), expected)
            # Interleave flowrun and raw on the cluster so that machine noise hits both.
            dask_times, raw_times, published = [], [], []
            for i in range(args.repeat):
                dask_times.append(
                    best_of(
                        1,
                        lambda: run_flow(DaskExecutor(address=cluster.scheduler_address)),
                        expected,
                    )
                )
                raw_times.append(
                    best_of(1, lambda w=workload: raw_dist(client, w, args.n), expected)
                )
                if args.publish:  # the operator's path: every result published for a resume
                    prefix = f"bench-{workload}-{i}/"
                    executor = DaskExecutor(
                        address=cluster.scheduler_address, publish_prefix=prefix
                    )
                    published.append(best_of(1, lambda e=executor: run_flow(e), expected))
                    for name in client.list_datasets():
                        if str(name).startswith(prefix):
                            client.unpublish_dataset(name)
            pub = min(published) if published else float("nan")
            rows.append((workload, local, sync, raw_s, min(dask_times), min(raw_times), pub))
            print(f"{workload}: done", flush=True)
    finally:
        client.close()
        cluster.close()
    print()
    print(
        f"flowrun engine benchmark | N={args.n} | min of {args.repeat} | "
        f"python {platform.python_version()} | "
        f"dask/distributed {distributed.__version__} | {os.cpu_count()} cores"
    )
    print(
        "| workload | Local s | Synchronous s | raw sync s | Dask s | raw dist s "
        "| Dask / raw dist | Local tasks/s |" + (" Dask+publish s | / raw dist |" * args.publish)
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" * args.publish))
    for workload, local, sync, raw_s, dsk, raw_d, pub in rows:
        runs = args.n + {"chain": 0, "fanout": 3, "map": 2, "mapmap": args.n + 3}[workload]
        print(
            f"| {workload}-{args.n} | {local:.3f} | {sync:.3f} | {raw_s:.3f} | {dsk:.3f} "
            f"| {raw_d:.3f} | "
            f"{dsk / raw_d:.2f}x | {runs / local:,.0f} |"
            + (f" {pub:.3f} | {pub / raw_d:.2f}x |" if args.publish else "")
        )


def _serve_cluster(queue: Any, stop: Any) -> None:
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    queue.put(cluster.scheduler_address)
    stop.wait()
    cluster.close()


@task
def blob(i: int, mib: int) -> bytes:
    return bytes(mib * 2**20)


@task
def size(data: bytes) -> int:
    return len(data)


def memory_checks(args: argparse.Namespace) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve_cluster, args=(queue, stop))
    server.start()
    address = queue.get(timeout=120)
    try:
        if args.big_map:
            big_map(args, address)
        big_data(args, address)
    finally:
        stop.set()
        server.join(120)


class PeakRSS:
    """Samples this process's RSS in a thread while a block runs."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.before = self.peak = self.me.memory_info().rss
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.done.wait(0.2):
            self.peak = max(self.peak, self.me.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.after = self.me.memory_info().rss
        self.peak = max(self.peak, self.after)

    def __str__(self) -> str:
        mib = 2**20
        return (
            f"client RSS before {self.before / mib:.0f} MiB, peak {self.peak / mib:.0f} MiB, "
            f"after {self.after / mib:.0f} MiB"
        )


def big_map(args: argparse.Namespace, address: str) -> None:
    n = args.big_map
    with Flow("big-map") as flow:
        final = total_task(inc_task.map(list(range(n))))
    t0 = time.perf_counter()
    with PeakRSS() as rss:
        state = run_until_finished(
            flow, executor=DaskExecutor(address=address), return_tasks=[final]
        )
    elapsed = time.perf_counter() - t0
    assert state.result[final].result == sum(range(n)) + n, state
    print(f"map-{n:,} on DaskExecutor: {state!r} in {elapsed:.1f}s; {rss}")


def big_data(args: argparse.Namespace, address: str) -> None:
    parts = max(1, args.big_data_mib // 128)
    mib = 128 if parts > 1 else args.big_data_mib
    with Flow("big-data") as flow:
        moved = total_task(size.map(blob.map(list(range(parts)), mib=unmapped(mib))))
    with PeakRSS() as rss:
        state = run_until_finished(
            flow, executor=DaskExecutor(address=address), return_tasks=[moved]
        )
    print(
        f"{parts} x {mib} MiB ({state.result[moved].result / 2**30:.2f} GiB) passed between "
        f"tasks: {state!r}; {rss}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workloads", default="chain,fanout,map")
    parser.add_argument(
        "--dask-only", action="store_true", help="only DaskExecutor vs raw distributed"
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also time DaskExecutor with publish_prefix (the operator's path, for resumes)",
    )
    parser.add_argument("--memory", action="store_true", help="also run the memory checks")
    parser.add_argument("--only-memory", action="store_true")
    parser.add_argument("--big-map", type=int, default=100_000)
    parser.add_argument("--big-data-mib", type=int, default=1024)
    args = parser.parse_args()
    if not args.only_memory:
        timing_table(args)
    if args.memory or args.only_memory:
        memory_checks(args)


if __name__ == "__main__":
    main()
