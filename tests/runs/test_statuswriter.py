"""The status writer's own logic: batching, merging, retries (no API server involved here;
the real patches are exercised by the control-plane tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flowrun.runs import statuswriter
from flowrun.runs.statuswriter import StatusWriter, deep_merge


class RecordingSink:
    def __init__(self, fail_first: int = 0, gone: bool = False) -> None:
        self.patches: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.gone = gone
        self.state: dict[str, Any] = {}

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        if self.gone:
            raise statuswriter.StatusGone(name)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ConnectionError("apiserver went away")
        self.patches.append(dict(patch))
        self.state = deep_merge(self.state, patch)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_deep_merge_newer_wins_and_nests() -> None:
    old = {"phase": "Running", "tasks": {"a": {"state": "Running", "runCount": 1}}}
    new = {"tasks": {"a": {"state": "Success"}, "b": {"state": "Pending"}}}
    assert deep_merge(old, new) == {
        "phase": "Running",
        "tasks": {"a": {"state": "Success", "runCount": 1}, "b": {"state": "Pending"}},
    }


def test_many_updates_become_few_patches() -> None:
    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        async with StatusWriter(sink, namespace="ns", name="fr", interval=0.2) as writer:
            for i in range(1000):
                writer.update({"tasks": {f"t{i % 50}": {"state": "Running", "n": i}}})
                if i % 100 == 0:
                    await asyncio.sleep(0)
        return sink

    sink = run(scenario())
    assert len(sink.patches) <= 12
    assert sink.state["status"]["tasks"]["t49"] == {"state": "Running", "n": 999}
    assert len(sink.state["status"]["tasks"]) == 50


def test_slow_patches_are_paced_by_their_own_cost() -> None:
    """A patch that takes the API server long (a big inline flow) is followed by a pause of
    PACE times its duration, not by the next patch one interval later."""

    class SlowSink(RecordingSink):
        def __init__(self) -> None:
            super().__init__()
            self.starts: list[float] = []
            self.ends: list[float] = []

        async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
            self.starts.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.1)
            await super().patch_status(namespace, name, patch)
            self.ends.append(asyncio.get_running_loop().time())

    async def until(condition: Any) -> None:
        async with asyncio.timeout(60):
            while not condition():
                await asyncio.sleep(0.005)

    async def scenario() -> SlowSink:
        sink = SlowSink()
        async with StatusWriter(sink, namespace="ns", name="fr", interval=0.01) as writer:
            for i in range(3):  # each update arrives while the previous patch is in flight
                writer.update({"tasks": {"t": {"n": i}}})
                await until(lambda: len(sink.starts) > i)  # noqa: B023 - awaited right here
            await until(lambda: len(sink.ends) == 3)
        return sink

    sink = run(scenario())
    assert len(sink.starts) == 3  # all sent by the writer's loop, before close()
    for k in range(2):
        took = sink.ends[k] - sink.starts[k]
        # The pause scales with the patch's cost (interval alone is 0.01 s): PACE x took.
        assert sink.starts[k + 1] - sink.ends[k] >= max(2.0, statuswriter.PACE * 0.9) * took
    assert sink.state["status"]["tasks"]["t"] == {"n": 2}


def test_failed_patch_is_retried_without_losing_newer_values() -> None:
    async def scenario() -> RecordingSink:
        sink = RecordingSink(fail_first=2)
        async with StatusWriter(sink, namespace="ns", name="fr", interval=0.05) as writer:
            writer.update({"phase": "Running", "tasks": {"a": {"state": "Running"}}})
            await asyncio.sleep(0.01)
            writer.update({"tasks": {"a": {"state": "Success"}}})
        return sink

    sink = run(scenario())
    assert sink.state["status"] == {"phase": "Running", "tasks": {"a": {"state": "Success"}}}


def test_close_flushes_the_final_update() -> None:
    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        async with StatusWriter(sink, namespace="ns", name="fr", interval=30) as writer:
            writer.update({"phase": "Running"})
            await asyncio.sleep(0.05)
            writer.update({"phase": "Succeeded"})  # inside the 30 s interval: sent by close()
        return sink

    sink = run(scenario())
    assert sink.state["status"]["phase"] == "Succeeded"


def test_deleted_object_stops_the_writer() -> None:
    async def scenario() -> StatusWriter:
        sink = RecordingSink(gone=True)
        async with StatusWriter(sink, namespace="ns", name="fr", interval=0.01) as writer:
            writer.update({"phase": "Running"})
            await asyncio.sleep(0.05)
            writer.update({"phase": "Failed"})
        return writer

    writer = run(scenario())
    assert writer.patches_sent == 0


class GatedSink(RecordingSink):
    """A sink whose first patch stays in flight until the test opens the gate: `in_flight` is
    set when it arrives, so a test acts *while* it is in flight, not after a guessed sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = asyncio.Event()
        self.gate = asyncio.Event()

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        if not self.gate.is_set():
            self.in_flight.set()
            await self.gate.wait()
        await super().patch_status(namespace, name, patch)


def test_close_during_a_send_loses_nothing() -> None:
    async def scenario() -> RecordingSink:
        sink = GatedSink()
        async with StatusWriter(sink, namespace="ns", name="fr", interval=0.01) as writer:
            writer.update({"startTime": "t0", "tasks": {"a": {"state": "Running"}}})
            await sink.in_flight.wait()  # the first patch is in flight when close() comes
            writer.update({"phase": "Succeeded"})
            sink.gate.set()  # close() cancels the held send; the final flush goes through
        return sink

    sink = run(scenario())
    assert sink.state["status"] == {
        "startTime": "t0",
        "tasks": {"a": {"state": "Running"}},
        "phase": "Succeeded",
    }


def test_a_requeued_patch_never_overrides_newer_source_values() -> None:
    async def scenario() -> RecordingSink:
        sink = GatedSink()
        counts = {"n": 0}

        def source() -> dict[str, Any]:
            return {"progress": f"{counts['n']}/2"}

        async with StatusWriter(sink, namespace="ns", name="fr", interval=0.01) as writer:
            writer.set_source(source)
            writer.touch()
            await sink.in_flight.wait()  # "0/2" is in flight when close() interrupts it
            counts["n"] = 2
            writer.touch()
            sink.gate.set()
        return sink

    sink = run(scenario())
    assert sink.state["status"]["progress"] == "2/2"


class FirstGatedSink(GatedSink):
    """Holds only the first patch; later ones go straight through."""

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        if self.in_flight.is_set():
            await RecordingSink.patch_status(self, namespace, name, patch)
            return
        await super().patch_status(namespace, name, patch)


def test_flush_waits_for_the_patch_in_flight_and_sends_in_order() -> None:
    async def scenario() -> tuple[bool, list[dict[str, Any]]]:
        sink = FirstGatedSink()
        async with StatusWriter(sink, namespace="ns", name="fr", interval=30) as writer:
            writer.update({"phase": "Pending"})
            await sink.in_flight.wait()  # the loop's patch is in flight
            writer.update({"phase": "Running"})
            flushing = asyncio.ensure_future(writer.flush())
            await asyncio.sleep(0.05)
            assert not flushing.done()  # it waits for the patch in flight, never overtakes it
            sink.gate.set()
            landed = await flushing
            seen = list(sink.patches)  # on the server when flush() returned
        return landed, seen

    landed, seen = run(scenario())
    assert landed
    assert [p["status"]["phase"] for p in seen] == ["Pending", "Running"]


class SlowServerSink(RecordingSink):
    """The first patch reaches the server, which applies it only when the gate opens, whether
    or not the client still waits: a request cancelled in flight is not un-sent."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = asyncio.Event()
        self.gate = asyncio.Event()
        self.server: list[asyncio.Future[None]] = []

    async def _apply_later(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        await self.gate.wait()
        await RecordingSink.patch_status(self, namespace, name, patch)

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        if self.in_flight.is_set():
            await super().patch_status(namespace, name, patch)
            return
        self.in_flight.set()
        self.server.append(asyncio.ensure_future(self._apply_later(namespace, name, patch)))
        await asyncio.shield(self.server[-1])


def test_a_run_ending_while_its_first_patch_is_in_flight_keeps_its_end() -> None:
    """A run that fails within milliseconds: its final phase is written while the first patch
    (Pending) is still in flight. The final patch must land after it, never before (a merge
    patch applied late would put the run back to Pending)."""

    async def scenario() -> RecordingSink:
        sink = SlowServerSink()
        writer = StatusWriter(sink, namespace="ns", name="fr", interval=0.01)
        async with writer:
            writer.update({"phase": "Pending"})
            await sink.in_flight.wait()
            writer.update({"phase": "Failed", "message": "cannot load flow.ref"})
            closing = asyncio.ensure_future(writer.close())
            await asyncio.sleep(0.1)  # the close is under way while the server is slow
            sink.gate.set()
            await closing
        await asyncio.gather(*sink.server)
        return sink

    sink = run(scenario())
    assert sink.state["status"] == {"phase": "Failed", "message": "cannot load flow.ref"}
