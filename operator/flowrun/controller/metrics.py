"""Prometheus metrics of the operator (kopf itself exports none).

One `Metrics` value per operator process, created by the CLI and handed to the daemons; its own
`CollectorRegistry` keeps tests and several operators in one process from colliding.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flowrun.engine import interrupts

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Cancelled")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.flowruns = Gauge(
            "flowrun_flowruns", "FlowRuns seen by this operator, by phase", ["phase"], registry=r
        )
        self.runs_in_flight = Gauge(
            "flowrun_runs_in_flight", "FlowRuns whose flow is running now", registry=r
        )
        self.run_duration = Histogram(
            "flowrun_run_duration_seconds",
            "Time from a FlowRun's start to its end, by final phase",
            ["phase"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
            registry=r,
        )
        self.task_states = Counter(
            "flowrun_task_state_changes",
            "Task state changes reported by runs",
            ["state"],
            registry=r,
        )
        self.cluster_startup = Histogram(
            "flowrun_cluster_startup_seconds",
            "Time to start (or reconnect to) a FlowRun's Dask cluster, by provider",
            ["provider"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.status_patches = Counter(
            "flowrun_status_patches", "Status patches sent to the API server", registry=r
        )
        self.status_patch_failures = Counter(
            "flowrun_status_patch_failures", "Status patches that failed (then retried)", registry=r
        )
        r.register(_TaskThreads())
        for phase in PHASES:
            self.flowruns.labels(phase=phase).set(0)

    def serve(self, port: int) -> None:
        """Serve /metrics on a daemon thread of this process."""
        start_http_server(port, registry=self.registry)


class _TaskThreads(Collector):
    """Task threads given up on at a timeout or cancel: the engine keeps the counts, read here."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "flowrun_abandoned_task_threads",
            "Task threads abandoned in a blocking call at their timeout or a cancel",
            value=interrupts.abandoned_threads(),
        )
        yield GaugeMetricFamily(
            "flowrun_stuck_task_threads",
            "Abandoned task threads still running (a blocking call that has not returned)",
            value=interrupts.stuck_threads(),
        )
