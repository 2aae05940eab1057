"""Pure parts of the controller: the run plan's checks, status diffs, phases, error mapping.

(The Secret reader here is a stand-in for reading Secret *data*; reading real Secrets, and what
the API server decides, is covered by the control-plane tests.)"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

import pytest

from flowrun.api.validation import SpecError
from flowrun.cluster import ClusterStartupError
from flowrun.controller import errors, policy
from flowrun.controller.clusteropts import cluster_options
from flowrun.engine.events import TaskEvent
from flowrun.runs import outcome, plan, render
from flowrun.runs.execute import RunResult
from flowrun.runs.outcome import FlowRunError
from flowrun.runs.render import TaskStatus, merge_diff


class Secrets:
    def __init__(self, data: Mapping[str, Mapping[str, str]]) -> None:
        self.data = data

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        return self.data.get(name)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "flow": {
            "tasks": [{"name": "a", "fn": "m:f"}],
            "parameters": [{"name": "token", "required": True}],
        },
        "executor": {"type": "Dask", "dask": {"cluster": "External", "address": "tcp://x:1"}},
        "parametersFrom": [{"name": "token", "secretKeyRef": {"name": "s", "key": "k"}}],
        **extra,
    }


def build(raw: dict[str, Any], *, allow: bool = False, secrets: Any = None) -> plan.RunPlan:
    return asyncio.run(
        plan.build_plan(
            raw,
            namespace="ns",
            settings=plan.Policy(allow_in_process=allow),
            secrets=secrets or Secrets({"s": {"k": b64("hunter2")}}),
        )
    )


class TestPlan:
    def test_secret_value_becomes_a_parameter_and_is_redacted(self) -> None:
        p = build(spec())
        assert p.parameters == {"token": "hunter2"}
        assert p.redact("login with hunter2 failed") == "login with *** failed"
        assert p.cluster_kind == "External"
        options = cluster_options(p.spec, default_image="acme/base:1")
        assert options.address == "tcp://x:1"
        assert options.image == "acme/base:1"

    @pytest.mark.parametrize(
        "executor",
        [
            {"type": "Local"},
            {"type": "Synchronous"},
            {"type": "Dask", "dask": {"cluster": "Local"}},
        ],
    )
    def test_in_process_refused_unless_allowed(self, executor: dict[str, Any]) -> None:
        with pytest.raises(FlowRunError) as info:
            build(spec(executor=executor))
        assert info.value.reason == "InProcessExecutionRefused"
        assert "--allow-in-process" in info.value.message
        allowed = build(spec(executor=executor), allow=True)
        assert (allowed.executor, allowed.cluster_kind) != ("Dask", "Kubernetes")

    def test_missing_secret_key(self) -> None:
        with pytest.raises(FlowRunError) as info:
            build(spec(), secrets=Secrets({"s": {"other": b64("x")}}))
        assert info.value.reason == "SecretKeyNotFound"
        assert "spec.parametersFrom[0]" in info.value.message

    def test_unknown_names_are_spec_errors(self) -> None:
        with pytest.raises(SpecError, match=r"spec.returnTasks\[0\]: unknown task 'zz'"):
            build(spec(returnTasks=["zz"]))


class TestErrors:
    def test_one_mapping_for_everything(self) -> None:
        assert errors.classify(SpecError(["spec.x: bad"])).reason == "InvalidSpec"
        timeout = ClusterStartupError("ClusterStartupTimeout", "not ready")
        assert errors.classify(timeout) == errors.Outcome(
            "Failed", "ClusterStartupTimeout", "not ready"
        )
        crash = errors.classify(KeyError("x"))
        assert (crash.phase, crash.reason) == ("Failed", "InternalError")
        assert len(errors.classify(FlowRunError("R", "m" * 5000)).message) <= errors.MAX_MESSAGE


class TestPhases:
    def test_terminal_phase_fragment(self) -> None:
        fragment = render.phase_fragment(
            "Failed",
            now=1.8e9,
            reason="DeadlineExceeded",
            message="too slow",
            generation=3,
            completion_time=1.8e9,
        )
        assert fragment["phase"] == "Failed"
        assert "completionTime" in fragment
        stalled = {c["type"]: c for c in fragment["conditions"]}["Stalled"]
        assert (stalled["status"], stalled["reason"]) == ("True", "DeadlineExceeded")
        assert stalled["observedGeneration"] == 3

    @pytest.mark.parametrize(
        ("engine_state", "phase"),
        [("Success", "Succeeded"), ("Skipped", "Succeeded"), ("Failed", "Failed"),
         ("TriggerFailed", "Failed"), ("Cancelled", "Cancelled"), ("Cancelling", "Cancelled"),
         ("Running", "Failed")],
    )  # fmt: skip
    def test_final_phase(self, engine_state: str, phase: str) -> None:
        assert outcome.final_phase(engine_state) == phase

    def test_a_flow_left_running_ends_failed_with_its_own_reason(self) -> None:
        ended = outcome.flow_outcome("Running", None)
        assert (ended.phase, ended.reason, ended.message) == (
            "Failed", "TasksIncomplete", "Flow Running.")  # fmt: skip


def event(task: str, state: str, *, finished: bool = False, index: int | None = None) -> TaskEvent:
    return TaskEvent(task, index, state, None, 1, 1_800_000_000.0, finished)


class TestTaskStatusDiffs:
    def test_only_changes_are_sent_and_vanished_keys_are_nulled(self) -> None:
        ts = TaskStatus(["a", "b"], redact=lambda t: t)
        ts.apply(event("a", "Running"))
        first = ts.fragment()
        assert first["tasks"]["a"]["state"] == "Running"
        assert first["progress"] == "0/2"
        assert ts.fragment() == {}  # nothing new
        ts.apply(event("a", "Success", finished=True))
        second = ts.fragment()
        assert second["tasks"]["a"]["state"] == "Success"
        assert second["taskCounts"]["Running"] is None  # the count went away: null deletes it
        assert second["progress"] == "1/2"

    def test_restart_keeps_finished_tasks(self) -> None:
        before = {
            "progress": "1/2",
            "tasks": {"a": {"state": "Success", "runCount": 1}, "b": {"state": "Running"}},
        }
        ts = TaskStatus(["a", "b"], redact=lambda t: t, sent=before)
        fragment = ts.fragment()
        assert "a" not in fragment.get("tasks", {})  # unchanged: not sent again
        assert fragment["tasks"]["b"] is None  # will run again and report

    def test_merge_diff_nested(self) -> None:
        assert merge_diff({"t": {"a": 1}}, {"t": {"a": 1}}) == {}
        assert merge_diff({}, {"t": [1]}) == {"t": [1]}


class TestPolicy:
    def result(self, state: str, **fields: Any) -> RunResult:
        fields.setdefault("results", {})
        return RunResult(state=state, message=fields.pop("message", None), **fields)

    def test_a_flow_end_and_a_stop_become_outcomes(self) -> None:
        ok = policy.end_of_flow(self.result("Success"), cancelled=False, stop_reason=None,
                                deadline_seconds=None)  # fmt: skip
        assert (ok.phase, ok.reason) == ("Succeeded", "Succeeded")
        late = policy.end_of_flow(self.result("Cancelled"), cancelled=True,
                                  stop_reason="DeadlineExceeded", deadline_seconds=5)  # fmt: skip
        assert (late.phase, late.reason) == ("Failed", "DeadlineExceeded")
        assert "(5s)" in late.message
        assert policy.is_exiting(policy.stopped_outcome("OperatorExiting", None))

    def test_only_the_first_unmapped_task_failures_become_events(self) -> None:
        events = policy.TaskFailureEvents(limit=2)
        admitted = [
            events.admit(event(name, state, index=index))
            for name, state, index in [("a", "Running", None), ("b", "Failed", 0),
                                       ("c", "TimedOut", None), ("d", "TriggerFailed", None),
                                       ("e", "Failed", None)]
        ]  # fmt: skip
        assert admitted == [False, False, True, True, False]

    def test_takeovers_count_until_the_limit_unless_handed_over(self) -> None:
        counted, error = policy.takeover({"phase": "Running"}, 2)
        assert (counted, error) == ({"operatorRestarts": 1, "handedOver": None}, None)
        _, error = policy.takeover({"operatorRestarts": 2}, 2)
        assert error is not None
        assert (error.reason, "restarted 3 times" in error.message) == ("OperatorRestarts", True)
        clean = policy.takeover({"operatorRestarts": 2, "handedOver": True}, 2)
        assert clean == ({"handedOver": None}, None)

    @pytest.mark.parametrize(
        ("executor", "status", "sweep"),
        [({"type": "Local"}, {}, False), ({"type": "Dask", "dask": {"cluster": "Local"}},
          {"cluster": {"name": "fr-a-1"}}, False), (None, {}, False),
         (None, {"cluster": {"name": "fr-a-1"}}, True),
         (None, {"cluster": {"name": "fr-a-1", "deleted": True}}, False),
         ({"type": "Dask", "dask": {"cluster": "External"}}, {"cluster": {"name": "x"}}, False)],
    )  # fmt: skip
    def test_only_runs_that_got_a_kubernetes_cluster_are_swept(
        self, executor: dict[str, Any] | None, status: dict[str, Any], sweep: bool
    ) -> None:
        spec = {"executor": executor} if executor else {}
        assert policy.needs_sweep(spec, status) is sweep

    def test_results_are_capped_once(self) -> None:
        big = list(range(10_000))
        fragment = render.results_fragment({"a": 1, "big": big}, ("odd",))
        assert fragment == {"results": {"a": 1}, "resultsOmitted": ["odd", "big"]}
        assert render.results_fragment({}) == {}
