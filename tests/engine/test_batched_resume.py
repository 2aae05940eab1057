"""Publishing and resuming batched maps: a batch is published under one name once all its
children reported, and a new client (a restarted operator) resumes the map without running
again the children that finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import distributed
from engine_helpers import poll

from flowrun import Flow, task
from flowrun.engine import run_until_finished
from flowrun.engine import state as s
from flowrun.engine.executors import dask_batches, dask_resume
from flowrun.executors import DaskExecutor

BLOCKED = 25


def test_batches_never_hold_a_gap_in_map_indices() -> None:
    chunks = dask_batches.chunks([0, 1, 2, 3, 4, 7, 8, 20], 3)
    assert chunks == [range(0, 3), range(3, 5), range(5, 7), range(7, 8)]
    assert dask_batches.chunks([], 3) == []


def _runs(folder: Path, index: int) -> int:
    return len(list(folder.glob(f"{index}-*")))


def _flow(folder: Path) -> tuple[Flow, Any, Any]:
    @task
    def count(x: int) -> int:
        (folder / f"{x}-{uuid.uuid4().hex}").touch()
        if x == BLOCKED:  # holds its batch until the run is cancelled (and released)
            poll(lambda: (folder / "release").exists() or not (folder / "block").exists(), 120)
        return x

    @task
    def total(xs: list[int]) -> int:
        return sum(xs)

    with Flow("resume-batches") as flow:
        m = count.map(list(range(40)))
        t = total(m)
    return flow, m, t


def test_a_new_client_resumes_a_batched_map_without_rerunning_finished_children(
    dask_cluster: Any, tmp_path: Path
) -> None:
    prefix = f"resume-{uuid.uuid4().hex[:8]}/"
    (tmp_path / "block").touch()
    flow, m, t = _flow(tmp_path)
    cancel = threading.Event()
    out: dict[str, Any] = {}
    first = DaskExecutor(
        address=dask_cluster.scheduler_address, publish_prefix=prefix, map_batch_size=10
    )
    thread = threading.Thread(
        target=lambda: out.update(state=run_until_finished(flow, executor=first, cancel=cancel))
    )
    thread.start()
    poll(lambda: all(_runs(tmp_path, i) for i in (*range(20), BLOCKED)), timeout=120)
    cancel.set()  # as an operator that stops in the middle of the map
    thread.join(60)
    assert not thread.is_alive()
    (tmp_path / "release").touch()
    before = out["state"].result[m].map_states
    succeeded = [i for i, c in enumerate(before) if type(c) is s.Success]
    assert set(range(20)) <= set(succeeded)
    assert type(before[BLOCKED]) is s.Cancelled

    with distributed.Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        names = [n for n in client.list_datasets() if str(n).startswith(prefix)]
        # One name per batch, none per child (the batch of 30-39 may have been cancelled).
        assert {f"{prefix}{m.slug}[0-9]", f"{prefix}{m.slug}[10-19]"} <= set(names)
        parts = [dask_resume.PART.search(str(n)) for n in names if "[" in str(n)]
        assert all(p is not None and p.group(2) is not None for p in parts), names
        found = dask_resume.published_states(client, prefix, [m.slug, t.slug])
        resumed = found[m.slug]
        assert isinstance(resumed, s.Mapped)
        assert resumed.n_map_states == 40
        for i in succeeded:
            assert type(resumed.map_states[i]) is s.Success
        assert not resumed.map_states[BLOCKED].is_finished()
        later = DaskExecutor(client=client, map_batch_size=10)
        state = run_until_finished(flow, executor=later, task_states=found, return_tasks=[m, t])
        for name in names:
            client.unpublish_dataset(name)
    assert state.is_successful(), state
    assert state.result[t].result == sum(range(40))
    assert state.result[m].result == list(range(40))
    for i in succeeded:
        assert _runs(tmp_path, i) == 1, i  # finished before the stop: not run again
    assert _runs(tmp_path, BLOCKED) == 2  # cancelled: runs again


def _run_in_this_process(address: str, folder: str, prefix: str) -> None:
    """The killed client (a runner Pod): runs the flow, publishing under `prefix`."""
    flow, _, _ = _flow(Path(folder))
    executor = DaskExecutor(address=address, publish_prefix=prefix, map_batch_size=10)
    run_until_finished(flow, executor=executor)


def _batches_running(client: Any, slug: str) -> list[str]:
    return [
        str(k) for keys in client.processing().values() for k in keys if str(k).startswith(slug)
    ]


def test_children_finished_in_a_batch_survive_a_kill_9_of_its_client(
    dask_cluster: Any, tmp_path: Path
) -> None:
    """A client killed (kill -9) while a batch runs: the worker publishes the children the
    batch finished and starts no other; a new client resumes and runs only the rest."""
    prefix = f"killed-{uuid.uuid4().hex[:8]}/"
    (tmp_path / "block").touch()
    flow, m, t = _flow(tmp_path)
    child = subprocess.Popen(
        [sys.executable, __file__, dask_cluster.scheduler_address, str(tmp_path), prefix],
        cwd=Path(__file__).parent,
    )
    with distributed.Client(dask_cluster.scheduler_address, set_as_default=False) as client:

        def published() -> set[str]:
            return {str(n) for n in client.list_datasets() if str(n).startswith(prefix)}

        try:
            poll(lambda: _runs(tmp_path, BLOCKED), timeout=120)
            # The batches that ended were published by their client, as before.
            whole = {f"{prefix}{m.slug}[{a}-{a + 9}]" for a in (0, 10, 30)}
            poll(lambda: whole <= published(), timeout=60)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(60)
        # The batch 20-29 is stuck in its child 25: what it finished is published anyway.
        poll(lambda: f"{prefix}{m.slug}[20-24]" in published(), timeout=60)
        (tmp_path / "release").touch()
        # Child 25 ends, then the batch stops: it publishes 25 and starts none of 26-29.
        poll(lambda: f"{prefix}{m.slug}[25-25]" in published(), timeout=60)
        poll(lambda: not _batches_running(client, m.slug), timeout=60)
        assert [_runs(tmp_path, i) for i in range(26, 30)] == [0, 0, 0, 0]

        found = dask_resume.published_states(client, prefix, [m.slug, t.slug])
        resumed = found[m.slug]
        assert isinstance(resumed, s.Mapped)
        assert [type(c) for c in resumed.map_states[20:30]] == [s.Success] * 6 + [s.Pending] * 4
        later = DaskExecutor(client=client, map_batch_size=10)
        state = run_until_finished(flow, executor=later, task_states=found, return_tasks=[m, t])
        for name in published():
            client.unpublish_dataset(name)
    assert state.is_successful(), state
    assert state.result[t].result == sum(range(40))
    assert state.result[m].result == list(range(40))
    assert [_runs(tmp_path, i) for i in range(40)] == [1] * 40


def test_publishing_keeps_the_adaptive_batches(dask_cluster: Any) -> None:
    """The operator's path (publish_prefix, no size given) batches a map as any other run."""

    @task
    def inc(x: int) -> int:
        return x + 1

    with Flow("publish-adaptive") as flow:
        m = inc.map(list(range(200)))
    prefix = f"adaptive-{uuid.uuid4().hex[:8]}/"
    executor = DaskExecutor(address=dask_cluster.scheduler_address, publish_prefix=prefix)
    state = run_until_finished(flow, executor=executor, return_tasks=[m])
    assert state.result[m].result == list(range(1, 201))
    with distributed.Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        names = [str(n) for n in client.list_datasets() if str(n).startswith(prefix)]
        for name in names:
            client.unpublish_dataset(name)
    parts = [dask_resume.PART.search(n) for n in names if "[" in n]
    assert 1 < len(parts) < 200
    assert all(p is not None and p.group(2) is not None for p in parts), names


def test_a_published_result_whose_data_is_lost_hides_none_of_the_others(
    dask_cluster: Any,
) -> None:
    """The scheduler refuses a whole graph when one of its inputs is gone: one lost published
    result (as when a task is cancelled just before its result is published) must leave the
    others resumable."""
    prefix = f"lost-{uuid.uuid4().hex[:8]}/"
    with distributed.Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        kept = client.submit(lambda: s.Success(result=1), pure=False)
        kept.result()
        gone = client.submit(lambda: s.Success(result=2), pure=False)
        gone.result()
        client.publish_dataset(**{f"{prefix}kept": kept})
        # Cancelled, then published: the dataset names a key the scheduler no longer has.
        client.cancel(gone)
        poll(lambda: gone.key not in client.who_has(), 30)
        client.publish_dataset(**{f"{prefix}gone": gone})
        found = dask_resume.published_states(client, prefix, ["kept", "gone"], timeout=30)
        assert sorted(found) == ["kept"]
        assert type(found["kept"]) is s.Success
        client.unpublish_dataset(f"{prefix}kept")
        client.unpublish_dataset(f"{prefix}gone")


if __name__ == "__main__":
    _run_in_this_process(*sys.argv[1:4])
