"""Adaptive workers on the product's own path: `executor.dask.adapt` on a real node.

The Helm-installed flowrun operator creates the run's DaskCluster and, next to it, a
DaskAutoscaler; the Helm-installed dask-kubernetes operator Pod polls the scheduler's adaptive
target over its HTTP API (the scheduler Service's dashboard port, through CoreDNS and
kube-proxy) and scales the cluster's DaskWorkerGroup. What the test reads is what the API server
holds: the worker group's replicas and the worker Pods, sampled while the run goes on.

The flow: twenty 4-second children of a map (one Dask task each) on a cluster that starts with
one worker of two threads, then a `tail` task on one worker that waits (bounded) until the
scheduler has retired the others, so the run lasts as long as the shrinking takes and no longer.
The dask operator polls every 5 s and rests 15 s after each change (fixed in its code), and
shrinks by at most a quarter of the workers at a time: 3 -> 2 -> 1 takes about half a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from flowrun.dev.helmop import DASK_CLUSTER_LABEL, HelmOperator
from support.flowruns import FlowRuns

pytestmark = [pytest.mark.controlplane, pytest.mark.node, pytest.mark.slow]

MINIMUM, MAXIMUM = 1, 3

# Polls the scheduler's own HTTP API from the worker (DASK_SCHEDULER_ADDRESS is set by the dask
# operator) until at most MINIMUM workers are left, for at most 240 s; prints how many.
WAIT_FOR_SHRINK = f"""python -c '
import json, os, time, urllib.request
host = os.environ["DASK_SCHEDULER_ADDRESS"].split("://")[1].rsplit(":", 1)[0]
url = "http://%s:8787/api/v1/get_workers" % host
end = time.time() + 240
while True:
    n = json.load(urllib.request.urlopen(url, timeout=10))["num_workers"]
    if n <= {MINIMUM} or time.time() > end:
        break
    time.sleep(2)
print(n)
'"""


def adaptive_spec(image: str) -> dict[str, Any]:
    return {
        "flow": {
            "tasks": [
                {"name": "pauses", "fn": "builtins:list", "args": [[4] * 20]},
                {
                    "name": "slow",
                    "fn": "time:sleep",
                    "args": [{"task": "pauses", "map": True}],
                    "mapBatchSize": 1,
                },
                {
                    "name": "tail",
                    "fn": "subprocess:getoutput",
                    "args": [WAIT_FOR_SHRINK],
                    "upstream": ["slow"],
                },
            ]
        },
        "returnTasks": ["tail"],
        "executor": {
            "type": "Dask",
            "dask": {
                "cluster": "Kubernetes",
                "image": image,
                "adapt": {"minimum": MINIMUM, "maximum": MAXIMUM},
            },
        },
    }


class ReplicasWatch:
    """Every value the worker group's replicas take, from a watch (`kubectl get -w`): a change
    that lasts less than a poll's interval (the last step down, just before the run ends and
    its cluster is deleted) is seen too."""

    def __init__(self, op: HelmOperator, namespace: str) -> None:
        kubectl = op.kubectl
        self.values: list[int] = []
        self._proc = subprocess.Popen(
            [
                str(kubectl.binary),
                "get",
                "daskworkergroups",
                "-n",
                namespace,
                "-w",
                "-o",
                'jsonpath={.spec.worker.replicas}{"\\n"}',
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "KUBECONFIG": str(kubectl.kubeconfig)},
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.strip().isdigit() and (not self.values or self.values[-1] != int(line)):
                self.values.append(int(line))

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=30)
        self._thread.join(timeout=30)


@dataclass
class Sampler:
    """The worker group's replicas and the worker Pods, every 2 s, from the API server."""

    op: HelmOperator
    namespace: str
    samples: list[tuple[float, int | None, int]] = field(default_factory=list)
    autoscalers: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        began = time.monotonic()
        while not self._stop.wait(2.0):
            try:
                self._sample(began)
            except Exception as exc:  # a slow API server on a loaded machine: sample again
                self.errors.append(repr(exc))

    def _sample(self, began: float) -> None:
        groups = self._items("daskworkergroups")
        replicas = groups[0]["spec"]["worker"]["replicas"] if groups else None
        pods = self.op.pods(self.namespace, f"{DASK_CLUSTER_LABEL},dask.org/component=worker")
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        self.samples.append((round(time.monotonic() - began, 1), replicas, len(live)))
        if not self.autoscalers:
            self.autoscalers = self._items("daskautoscalers")

    def _items(self, kind: str) -> list[dict[str, Any]]:
        out = self.op.kubectl("get", kind, "-n", self.namespace, "-o", "json", check=False)
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"] if out.returncode == 0 else []
        return items

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def sampler(node_operator: HelmOperator, restricted_namespace: str) -> Iterator[Sampler]:
    found = Sampler(node_operator, restricted_namespace)
    thread = threading.Thread(target=found.run, daemon=True)
    thread.start()
    yield found
    found.stop()
    thread.join(timeout=30)


@pytest.fixture
def replicas_watch(
    node_operator: HelmOperator, restricted_namespace: str
) -> Iterator[ReplicasWatch]:
    watch = ReplicasWatch(node_operator, restricted_namespace)
    yield watch
    watch.stop()


def test_workers_grow_under_a_map_and_shrink_after(
    node_operator: HelmOperator,
    restricted_namespace: str,
    replicas_watch: ReplicasWatch,
    sampler: Sampler,
    tmp_path: Any,
) -> None:
    op, ns = node_operator, restricted_namespace
    frs = FlowRuns(op.kubectl, ns, tmp_path)
    frs.apply("adaptive", adaptive_spec(op.image))
    try:
        status = frs.wait_phase("adaptive", timeout=480)
    except TimeoutError:
        raise AssertionError(f"{sampler.samples}\n{op.diagnosis(ns)}") from None
    sampler.stop()
    replicas = replicas_watch.values
    seen = f"replicas {replicas}; (seconds, replicas, worker Pods): {sampler.samples}"
    assert status["phase"] == "Succeeded", f"{status}\n{seen}\n{op.diagnosis(ns)}"

    assert replicas, seen
    assert replicas[0] == MINIMUM, seen  # the cluster starts with the minimum
    peak = replicas.index(max(replicas))
    assert replicas[peak] == MAXIMUM, seen  # the map's queue asked for more: up to the bound
    assert max(pods for _, _, pods in sampler.samples) > MINIMUM, seen
    # And the cluster shrank back while `tail` ran. Read from the watch, not the 2 s samples:
    # the last step down may come a moment before the run ends (on CI it fell between two).
    assert MINIMUM in replicas[peak:], seen
    # The tail task saw it from the scheduler's side: retired workers are gone from Dask too.
    assert status["results"]["tail"] == str(MINIMUM), f"{status}\n{seen}"

    (autoscaler,) = sampler.autoscalers
    assert autoscaler["spec"]["minimum"] == MINIMUM
    assert autoscaler["spec"]["maximum"] == MAXIMUM
    owners = {o["kind"] for o in autoscaler["metadata"].get("ownerReferences", [])}
    assert owners & {"FlowRun", "DaskCluster"}, autoscaler["metadata"]
    op.wait_clean(ns)  # no DaskCluster, DaskAutoscaler, Pod or Service left
    print(f"adaptive run {seen}")  # the figures docs/install.md quotes (pytest -s)
    assert "ClusterDeleted" in frs.event_reasons("adaptive")
