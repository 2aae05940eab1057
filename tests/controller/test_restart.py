"""Stop the in-process operator (kill -9, or SIGTERM) in the middle of a run and start it again:
the run finishes and no task that had finished runs again. Task results survive on an External Dask
cluster (a scheduler and a worker this test starts as subprocesses), published by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrun.dev.controlplane import free_port
from flowrun.dev.operator_process import OperatorExited, tied_to_parent
from flowrun.dev.waiting import wait_for
from support.flowruns import FLOWS, FlowRuns

pytestmark = pytest.mark.controlplane


@pytest.fixture
def external_dask(tmp_path: Path, tasks_dir: Path) -> Iterator[str]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FLOWS), os.environ.get("PYTHONPATH", "")]),
        "FRTASKS_DIR": str(tasks_dir),
    }
    dask = [sys.executable, "-m", "dask"]
    procs: list[subprocess.Popen[bytes]] = []
    with (tmp_path / "dask.log").open("ab") as log:
        for cmd in (
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            [*dask, "worker", address, "--nthreads", "4", "--no-dashboard", "--nworkers", "1"],
        ):
            procs.append(
                subprocess.Popen(
                    tied_to_parent(cmd),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
    try:
        wait_for(lambda: "Starting established connection" in (tmp_path / "dask.log").read_text()
                 or "Register worker" in (tmp_path / "dask.log").read_text(),
                 timeout=60, what="dask worker registered")  # fmt: skip
        yield address
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


@pytest.mark.parametrize("how", ["kill-9", "sigterm"])
def test_operator_stopped_mid_run_then_restarted_resumes_without_rerunning(
    how: str, start_operator: Any, own_frs: FlowRuns, external_dask: str
) -> None:
    frs = own_frs
    ns = frs.namespace
    tasks = [
        {"name": "a", "fn": "frtasks:mark", "args": [f"a-{ns}", 1]},
        {"name": "g", "fn": "frtasks:gate", "args": [f"g-{ns}", {"task": "a"}]},
        {"name": "c", "fn": "frtasks:mark", "args": [f"c-{ns}", {"task": "g"}]},
    ]
    spec = {
        "flow": {"tasks": tasks},
        "executor": {"type": "Dask", "dask": {"cluster": "External", "address": external_dask}},
        "returnTasks": ["c"],
    }
    # The in-process path (a runner Pod needs a node: tests/node/test_runner_pods.py).
    first = start_operator("-n", ns, "--allow-in-process")
    frs.apply("resume", spec)
    wait_for(lambda: frs.runs(f"g-{ns}-started"), what="g started")
    wait_for(
        lambda: frs.status("resume").get("tasks", {}).get("a", {}).get("state") == "Success",
        what="a Success in status",
    )
    if how == "kill-9":
        first.kill()  # no cleanup, no final status, the finalizer stays
    else:
        first.stop()  # SIGTERM: the run is left Running for the next operator, not Cancelled
    assert frs.status("resume")["phase"] == "Running"

    start_operator("-n", ns, "--allow-in-process")
    wait_for(lambda: "Resumed" in frs.event_reasons("resume"), what="Resumed event")
    frs.open_gate(f"g-{ns}")
    status = frs.wait_phase("resume")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"c": 1}
    assert frs.runs(f"a-{ns}") == 1  # finished before the stop: not run again
    # g was running and c waiting at the stop: both run again. The scheduler may also still
    # finish the old operator's submissions until it drops that client, so "at least once".
    assert frs.runs(f"g-{ns}") >= 1
    assert frs.runs(f"c-{ns}") >= 1


def test_a_batched_map_finished_before_a_restart_is_not_run_again(
    start_operator: Any, own_frs: FlowRuns, external_dask: str
) -> None:
    """The operator's path batches mapped children while it publishes them (one name per
    batch); a restarted operator resumes the map from those batches instead of re-running it."""
    import distributed  # noqa: PLC0415 - only this test looks at the cluster itself

    frs = own_frs
    ns = frs.namespace
    tasks = [
        {"name": "n", "fn": "frtasks:numbers", "args": [40]},
        {"name": "m", "fn": "frtasks:mark", "args": [f"m-{ns}", {"task": "n", "map": True}],
         "mapBatchSize": 10},
        {"name": "g", "fn": "frtasks:gate", "args": [f"g-{ns}", {"task": "m"}]},
        {"name": "c", "fn": "frtasks:total", "args": [{"task": "g"}]},
    ]  # fmt: skip
    spec = {
        "flow": {"tasks": tasks},
        "executor": {"type": "Dask", "dask": {"cluster": "External", "address": external_dask}},
        "returnTasks": ["c", "m"],
    }
    first = start_operator("-n", ns, "--allow-in-process")
    frs.apply("mapped", spec)
    wait_for(lambda: frs.runs(f"g-{ns}-started"), what="g started")
    with distributed.Client(external_dask, set_as_default=False) as client:

        def batches() -> list[str]:
            names = (str(n) for n in client.list_datasets())
            return sorted(n.rsplit("/", 1)[1] for n in names if "/mapped/" in n and "/m[" in n)

        wait_for(lambda: len(batches()) == 4, what="the 4 batches of m published")
        assert batches() == ["m[0-9]", "m[10-19]", "m[20-29]", "m[30-39]"]
    assert frs.runs(f"m-{ns}") == 40
    first.kill()

    start_operator("-n", ns, "--allow-in-process")
    wait_for(lambda: "Resumed" in frs.event_reasons("mapped"), what="Resumed event")
    frs.open_gate(f"g-{ns}")
    status = frs.wait_phase("mapped")
    assert status["phase"] == "Succeeded", status
    assert status["results"] == {"c": sum(range(40)), "m": list(range(40))}
    assert status["tasks"]["m"]["children"] == {"total": 40, "Success": 40}
    assert frs.runs(f"m-{ns}") == 40  # published in batches before the kill: not run again


def test_a_run_that_kills_its_operator_ends_failed_after_the_restart_limit(
    start_operator: Any, own_frs: FlowRuns
) -> None:
    """A task calling os._exit kills the operator (in-process executor); each new operator
    counts its takeover in status and, past --max-run-restarts, ends the run Failed instead
    of running it again. A crash-looping run can also be cancelled."""
    frs = own_frs
    die = {"flow": {"tasks": [{"name": "die", "fn": "os:_exit", "args": [3]}]},
           "executor": {"type": "Local"}}  # fmt: skip
    args = ("-n", frs.namespace, "--allow-in-process", "--max-run-restarts=2")

    def ended(name: str) -> bool:
        return frs.status(name).get("phase") in ("Succeeded", "Failed", "Cancelled")

    def operator_until(name: str) -> tuple[int, Any]:
        """Start operators, one after another as each dies, until `name` has ended."""
        for starts in range(1, 7):
            try:
                proc = start_operator(*args)
            except OperatorExited:  # killed by the run before /healthz answered
                continue
            wait_for(lambda: proc.proc.poll() is not None or ended(name), timeout=120,  # noqa: B023
                     what=f"the operator to die or {name} to end")  # fmt: skip
            if ended(name):
                return starts, proc
        raise AssertionError(f"{name} never ended: {frs.status(name)}")

    frs.apply("crash", die)
    starts, proc = operator_until("crash")
    status = frs.status("crash")
    assert (status["phase"], status["operatorRestarts"]) == ("Failed", 3), status
    assert "restarted 3 times" in status["message"]
    stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
    assert stalled["reason"] == "OperatorRestarts"
    assert starts == 4  # the first run, two counted restarts, and the one that ended it
    assert proc.ready()  # the last operator stays up

    proc.stop()
    frs.apply("cancelled", die)
    try:  # the run kills the operator...
        victim = start_operator(*args)
        wait_for(lambda: victim.proc.poll() is not None, timeout=120, what="the operator killed")
    except OperatorExited:  # (before its /healthz answered)
        pass
    frs.kubectl("patch", "flowrun", "cancelled", "-n", frs.namespace, "--type=merge",
                "-p", '{"spec": {"cancel": true}}')  # fmt: skip
    starts, proc = operator_until("cancelled")  # ...it is cancelled: it ends, nothing runs
    assert starts == 1
    assert frs.status("cancelled")["phase"] == "Cancelled"
    assert proc.ready()
