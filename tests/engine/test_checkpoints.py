"""Prefect 1.x's `checkpoint` and `target`: results written where the task runs when the
run's context has `checkpointing=True`, and a task whose target exists is not run again
(Cached with the stored value) — on LocalExecutor and on a real Dask LocalCluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowrun import Flow, Parameter, context, task
from flowrun.engine import signals
from flowrun.engine import state as states
from flowrun.engine.results import LocalResult
from flowrun.executors import DaskExecutor, LocalExecutor


def build(folder: Path) -> tuple[Flow, Any, Any]:
    @task(result=LocalResult(dir=str(folder)), target="{task_name}-{x}.pkl")
    def double(x: int) -> int:
        (folder / f"ran-{x}").touch(exist_ok=False)  # a second run with this input fails
        return 2 * x

    @task(result=LocalResult(dir=str(folder), location="inc-{map_index}.pkl"))
    def inc(y: int) -> int:
        return y + 1

    with Flow("checkpoints") as flow:
        x = Parameter("x")
        doubled = double(x)
        incremented = inc.map([1, 2])
    return flow, doubled, incremented


@pytest.mark.parametrize("where", ["local", "dask"])
def test_checkpointed_results_are_written_and_a_target_is_reused(
    where: str, tmp_path: Path
) -> None:
    flow, doubled, incremented = build(tmp_path)

    def executor() -> Any:
        if where == "local":
            return LocalExecutor()
        return DaskExecutor(cluster_kwargs={"processes": False, "n_workers": 1})

    first = flow.run(x=3, executor=executor(), context={"checkpointing": True})
    assert first.is_successful()
    assert first.result[doubled].result == 6
    if where == "local":  # on Dask the client gets the value; the Result stays on the worker
        assert first.result[doubled]._result.location == str(tmp_path / "double-3.pkl")
    assert first.result[incremented].result == [2, 3]
    assert sorted(p.name for p in tmp_path.glob("*.pkl")) == [
        "double-3.pkl",
        "inc-0.pkl",
        "inc-1.pkl",
    ]

    again = flow.run(x=3, executor=executor())  # checkpointing off: targets still count
    found = again.result[doubled]
    assert type(found) is states.Cached
    assert found.result == 6
    assert "double-3.pkl" in found.message

    other = flow.run(x=4, executor=executor())  # a new input: no target yet, runs, not written
    assert other.result[doubled].result == 8
    assert not (tmp_path / "double-4.pkl").exists()


def test_no_checkpoint_without_the_switch_or_with_checkpoint_false(tmp_path: Path) -> None:
    @task(result=LocalResult(dir=str(tmp_path), location="never.pkl"), checkpoint=False)
    def opted_out() -> int:
        return 1

    @task(result=LocalResult(dir=str(tmp_path), location="off.pkl"))
    def switch_off() -> int:
        return 2

    flow = Flow("no", tasks=[opted_out, switch_off])
    assert flow.run(context={"checkpointing": True}).is_successful()
    assert flow.run().is_successful()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["off.pkl"]


def test_each_loop_iteration_is_checkpointed(tmp_path: Path) -> None:
    class Numbered(LocalResult):
        """Writes each value to the next numbered file (a user's Result subclass)."""

        def write(self, value_: Any, **kwargs: Any) -> Any:
            written = len(list(tmp_path.glob("loop-*.pkl"))) + 1
            return self.copy().write_to(value_, f"loop-{written}.pkl")

        def write_to(self, value_: Any, location: str) -> Any:
            self.location = location
            return LocalResult.write(self, value_)

    @task(result=Numbered(dir=str(tmp_path)))
    def count_up() -> int:
        current = int(context.get("task_loop_result", 0)) + 1
        if context.get("task_loop_count", 1) < 3:
            raise signals.LOOP(result=current)
        return current

    with Flow("loops") as flow:
        counted = count_up()
    state = flow.run(context={"checkpointing": True})
    assert state.result[counted].result == 3
    reader = LocalResult(dir=str(tmp_path))
    assert [reader.read(f"loop-{n}.pkl").value for n in (1, 2, 3)] == [1, 2, 3]
