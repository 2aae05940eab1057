"""A big run's status routing: routine patches to the companion, the rest and the end to the
FlowRun with everything the companion got (no API server here; the control-plane test
tests/controller/test_big_inline_flow.py runs it for real)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from flowrun.api.status import StatusLimits
from flowrun.engine.events import TaskEvent
from flowrun.runs import companion, render
from flowrun.runs.statuswriter import StatusWriter, deep_merge


class Sinks:
    """The FlowRun's status sink and the companion's, recording what each received."""

    def __init__(self, live_fails: bool = False) -> None:
        self.flowrun: list[dict[str, Any]] = []
        self.live: list[dict[str, Any]] = []
        self.flowrun_state: dict[str, Any] = {}
        self.live_state: dict[str, Any] = {}
        self.live_fails = live_fails

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self.flowrun.append(dict(patch["status"]))
        self.flowrun_state = deep_merge(self.flowrun_state, patch["status"])

    async def patch_live(self, data: Mapping[str, str | None]) -> None:
        if self.live_fails:
            raise PermissionError('configmaps "x" is forbidden: cannot patch resource')
        self.live.append(dict(data))
        self.live_state = {**self.live_state, **data}


async def drive(sinks: Sinks) -> StatusWriter:
    writer = StatusWriter(sinks, namespace="ns", name="big", interval=0.01)
    writer.set_live(sinks)
    async with writer:
        writer.update({"statusConfigMap": "big-status"})  # as RunBase.go_live
        writer.update({"phase": "Running", "startTime": "2026-11-30T18:00:00Z"})
        await asyncio.sleep(0.05)
        writer.update({"taskCounts": {"total": 20, "Pending": 20}})
        for i in range(1, 21):
            writer.update({"progress": f"{i}/20", "tasks": {f"t{i}": {"state": "Success"}}})
            await asyncio.sleep(0.02)
        # As the status builder sends them: merge-patch diffs, a null deleting a key.
        writer.update({"results": {"t1": 1}})  # not routine: to the FlowRun at once
        await asyncio.sleep(0.05)
        writer.update({"progress": "20/20", "taskCounts": {"Pending": None, "Success": 20}})
        writer.update({"phase": "Succeeded", "completionTime": "2026-11-30T18:01:00Z"})
    return writer


def test_routine_patches_go_to_the_companion_and_the_flowrun_gets_all_of_them() -> None:
    sinks = Sinks()
    writer = asyncio.run(drive(sinks))
    # The FlowRun: its first write, the results, the end; never a routine patch alone.
    assert 3 <= len(sinks.flowrun) <= 4, sinks.flowrun
    assert all(not companion.routine(p) for p in sinks.flowrun[:-1])
    final = sinks.flowrun_state
    assert final["phase"] == "Succeeded"
    assert final["progress"] == "20/20"
    assert set(final["tasks"]) == {f"t{i}" for i in range(1, 21)}  # what the companion got
    assert final["results"] == {"t1": 1}
    assert final["statusConfigMap"] == "big-status"
    assert final["taskCounts"] == {"total": 20, "Pending": None, "Success": 20}  # a merge patch
    # The companion: many small writes, and the end (it follows every FlowRun write).
    assert len(sinks.live) >= 5
    assert all(set(d) <= set(companion.LIVE) for d in sinks.live)
    assert sinks.live_state["phase"] == "Succeeded"
    assert sinks.live_state["taskCounts"] == '{"total": 20, "Success": 20}'
    assert writer.live_patches_sent == len(sinks.live)


def test_a_companion_that_cannot_be_written_leaves_everything_to_the_flowrun() -> None:
    sinks = Sinks(live_fails=True)
    asyncio.run(drive(sinks))
    assert sinks.live == []
    assert len(sinks.flowrun) > 4  # routine patches reach the FlowRun again
    assert set(sinks.flowrun_state["tasks"]) == {f"t{i}" for i in range(1, 21)}
    assert sinks.flowrun_state["phase"] == "Succeeded"
    assert sinks.flowrun_state["statusConfigMap"] is None  # a merge patch's null: removed


def test_a_big_flow_is_one_of_the_policys_number_of_inline_tasks_or_more() -> None:
    tasks = [{"name": f"t{i}", "fn": "m:f"} for i in range(companion.BIG_FLOW_TASKS)]
    default = companion.LivePolicy()
    assert default.is_big({"flow": {"tasks": tasks}})
    assert not default.is_big({"flow": {"tasks": tasks[1:]}})
    assert not default.is_big({"flow": {"ref": "m:flow"}})
    assert companion.LivePolicy(min_tasks=3).is_big({"flow": {"tasks": tasks[:3]}})
    assert not companion.LivePolicy(min_tasks=0).is_big({"flow": {"tasks": tasks}})  # never


class TimedSinks(Sinks):
    """Also when (loop time) each FlowRun write was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.flowrun_at: list[float] = []

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self.flowrun_at.append(asyncio.get_running_loop().time())
        await super().patch_status(namespace, name, patch)


def test_the_flowrun_gets_routine_progress_once_per_refresh() -> None:
    """A short refresh (the operator's --live-status-refresh): routine patches reach the
    FlowRun again once that long has passed since its last write, and only then."""

    async def run(refresh: float) -> TimedSinks:
        sinks = TimedSinks()
        writer = StatusWriter(sinks, namespace="ns", name="big", interval=0.01)
        writer.set_live(sinks, refresh)
        async with writer:
            writer.update({"phase": "Running"})
            for i in range(1, 31):
                writer.update({"progress": f"{i}/30"})
                await asyncio.sleep(0.02)
        return sinks

    slow, fast = asyncio.run(run(60.0)), asyncio.run(run(0.1))
    # Before the writer's closing flush (which sends everything the FlowRun is owed):
    assert [p for p in slow.flowrun[:-1] if companion.routine(p)] == []
    assert [p for p in fast.flowrun[:-1] if companion.routine(p)], fast.flowrun
    gaps = [b - a for a, b in zip(fast.flowrun_at[:-2], fast.flowrun_at[1:-1], strict=True)]
    assert all(gap >= 0.099 for gap in gaps), gaps  # never more often than the refresh
    assert len(fast.live) > len(fast.flowrun)


def test_owed_progress_reaches_the_flowrun_at_the_refresh_when_nothing_else_comes() -> None:
    """Tasks that stop finishing (a long task): what the FlowRun is owed is written once the
    refresh has passed, with the companion's whole task map after it, not only at the end."""

    async def run() -> tuple[TimedSinks, list[dict[str, Any]], float]:
        sinks = TimedSinks()
        writer = StatusWriter(sinks, namespace="ns", name="big", interval=0.01)
        writer.set_live(sinks, 0.3)
        writer.set_task_map(lambda: {"tasks": {"t1": {"state": "Success"}}, "tasksOmitted": 0})
        async with writer:
            writer.update({"phase": "Running"})
            await asyncio.sleep(0.05)
            owed_at = asyncio.get_running_loop().time()
            writer.update({"progress": "1/2", "tasks": {"t1": {"state": "Success"}}})
            await asyncio.sleep(1.0)  # nothing else happens
            before_close = list(sinks.flowrun)
        return sinks, before_close, owed_at

    sinks, before_close, owed_at = asyncio.run(run())
    assert [p.get("progress") for p in before_close] == [None, "1/2"], before_close
    assert sinks.flowrun_at[1] - owed_at >= 0.2  # at the refresh, not at once
    assert json.loads(sinks.live_state["tasks"]) == {"t1": {"state": "Success"}}


def test_each_flowrun_write_is_followed_by_the_whole_task_map_when_it_changed() -> None:
    """The FlowRun's task map is lean; the companion gets the whole one (`set_task_map`) after
    each write of the FlowRun, only when it changed, and never with a routine write alone."""
    sinks = Sinks()
    whole = {"tasks": {"t1": {"state": "Success"}}, "tasksOmitted": 0}

    async def run() -> None:
        writer = StatusWriter(sinks, namespace="ns", name="big", interval=0.01)
        writer.set_live(sinks)
        writer.set_task_map(lambda: whole)
        async with writer:
            writer.update({"phase": "Running"})
            await asyncio.sleep(0.05)
            writer.update({"progress": "1/2"})  # routine: the companion alone, no map
            await asyncio.sleep(0.05)
            writer.update({"results": {"t1": 1}})  # the FlowRun, the map unchanged: not resent
            await asyncio.sleep(0.05)
            whole["tasks"] = {**whole["tasks"], "t2": {"state": "Failed"}}
            writer.update({"phase": "Failed"})

    asyncio.run(run())
    with_map = [d for d in sinks.live if "tasks" in d]
    assert len(with_map) == 2, sinks.live
    assert json.loads(sinks.live_state["tasks"]) == whole["tasks"]
    assert sinks.live_state["tasksOmitted"] == "0"
    routine_only = [d for d in sinks.live if set(d) == {"progress"}]
    assert routine_only, sinks.live


def test_a_big_runs_flowrun_lists_failures_first_within_the_lean_budget() -> None:
    names = [f"t{i}" for i in range(2000)]
    lean = {"on": True}
    status = render.TaskStatus(names, redact=str, lean=lambda: lean["on"])
    for i, name in enumerate(names):
        state = "Failed" if i % 100 == 99 else "Success"
        status.apply(TaskEvent(name, None, state, "no" if state == "Failed" else None, 1, 1.8e9,
                               True))  # fmt: skip
    fragment = status.fragment()
    listed = fragment["tasks"]
    size = len(json.dumps(listed, separators=(",", ":")))
    assert size <= StatusLimits().lean_tasks_bytes
    assert {f"t{i}" for i in range(99, 2000, 100)} <= set(listed)  # all 20 failures first
    assert fragment["tasksOmitted"] == 2000 - len(listed)
    assert len(status.task_map()["tasks"]) > len(listed)  # the companion's: the whole budget
    lean["on"] = False  # the companion given up: the FlowRun gets the whole map again
    again = deep_merge(fragment, status.fragment())
    assert {k for k, v in again["tasks"].items() if v} == set(status.task_map()["tasks"])


def test_a_restarted_run_knows_the_companions_tasks_the_flowrun_left_out() -> None:
    sent = {"tasks": {"a": {"state": "Failed"}}, "tasksOmitted": 1}
    data = {"tasks": json.dumps({"a": {"state": "Failed"}, "b": {"state": "Skipped"}})}
    known = companion.known_tasks(sent["tasks"], data)
    status = render.TaskStatus(["a", "b", "c"], redact=str, sent=sent, known=known)
    assert status.builder.done == 2
    assert companion.known_tasks(sent["tasks"], {"tasks": "not json"}) == sent["tasks"]
