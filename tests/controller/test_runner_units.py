"""Pure parts of the runner path: what the runner's Job asks of the kubelet, and how a crashed
runner's Pod status becomes the run's message. The kubelet's side (it really writes the log's
tail into the Pod's status) is shown on the node: tests/node/test_runner_pods.py."""

from __future__ import annotations

from typing import Any

import pytest

from flowrun.api import models
from flowrun.cluster import base
from flowrun.controller import runner_lost, runner_process
from flowrun.controller import runner_objects as objects
from flowrun.runs import companion, render
from flowrun.runs.outcome import FlowRunError

OWNER = base.Owner("flowrun.dev/v1alpha1", "FlowRun", "etl", "ns", "0a1b2c3d-9")


def container(config: objects.RunnerConfig) -> dict[str, Any]:
    spec = models.FlowRunSpec.model_validate({"flow": {"ref": "a.b:c"}})
    job = objects.job(OWNER, spec, config)
    runner: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return runner


def test_the_runner_leaves_its_logs_tail_in_its_pod_status_when_it_fails() -> None:
    assert container(objects.RunnerConfig(image="img:1"))["terminationMessagePolicy"] == (
        "FallbackToLogsOnError"
    )


def test_the_logs_tail_keeps_the_last_lines_and_the_end_of_a_long_line() -> None:
    log = "".join(f"line {i}\n\n" for i in range(100)) + "ValueError: boom\n"
    assert runner_lost.log_tail(log, lines=3) == "line 98\nline 99\nValueError: boom"
    long = "x" * 5000 + "END"
    tail = runner_lost.log_tail(long, chars=100)
    assert len(tail) == 100
    assert tail.startswith("...")
    assert tail.endswith("END")
    assert runner_lost.log_tail("\n  \n") == ""


def pod(name: str, created: str, terminated: dict[str, Any]) -> dict[str, Any]:
    """A Pod as the API server returns it (the fields the diagnosis reads)."""
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"containerStatuses": [{"name": "runner", "state": {"terminated": terminated}}]},
    }


def test_a_crashed_runner_is_told_by_each_pods_end_and_the_last_ones_log() -> None:
    pods = [
        pod("r-b", "2026-01-01T00:01:00Z", {"reason": "Error", "exitCode": 3, "message": "two\n"}),
        pod("r-a", "2026-01-01T00:00:00Z", {"reason": "OOMKilled", "exitCode": 137}),
    ]
    outcome = runner_lost.failed("BackoffLimitExceeded", pods)
    assert (outcome.phase, outcome.reason) == ("Failed", "RunnerFailed")
    assert outcome.message == (
        "The runner failed (BackoffLimitExceeded): Pod r-a: OOMKilled (exit code 137); "
        "Pod r-b: Error (exit code 3). The runner went over its memory limit: give it more "
        f"memory (limits.memory in {runner_lost.WHERE_RESOURCES}), then create the FlowRun "
        "again. The last lines of its log (Pod r-b):\ntwo"
    )
    assert "spec.runner.resources" in runner_lost.WHERE_RESOURCES
    crashed = runner_lost.failed("BackoffLimitExceeded", pods[:1]).message
    assert "memory" not in crashed  # only an OOMKilled runner is told to take more
    gone = runner_lost.failed("BackoffLimitExceeded", [])
    assert gone.message == "The runner failed (BackoffLimitExceeded): no Pod left to say why."


JOB_RUNNING: dict[str, Any] = {"status": {"active": 0}}  # no condition: the Job goes on


def test_an_oomkilled_runner_ends_the_run_at_once_and_a_plain_sigkill_is_retried() -> None:
    """The kubelet's reason, not the exit code (137 both), tells the two apart."""
    oom = pod("r-a", "2026-01-01T00:00:00Z", {"reason": "OOMKilled", "exitCode": 137})
    outcome = runner_lost.judge(JOB_RUNNING, [oom])
    assert outcome is not None
    assert (outcome.phase, outcome.reason) == ("Failed", "RunnerFailed")
    assert outcome.message.startswith(
        "The runner failed (OOMKilled, not retried: the same memory limit would kill it again): "
        "Pod r-a: OOMKilled (exit code 137). The runner went over its memory limit"
    )
    killed = pod("r-a", "2026-01-01T00:00:00Z", {"reason": "Error", "exitCode": 137})
    assert runner_lost.judge(JOB_RUNNING, [killed]) is None  # the Job's next Pod resumes
    assert not runner_lost.oom_killed([killed])


def test_the_logs_tail_fits_in_the_runs_message_however_many_pods() -> None:
    end = {"reason": "Error", "exitCode": 1, "message": "x" * 3000 + "\nValueError: boom"}
    pods = [pod(f"runner-{i:03}", f"2026-01-01T00:{i:02}:00Z", end) for i in range(12)]
    message = runner_lost.failed("BackoffLimitExceeded", pods).message
    assert len(message) <= render.RUN_MESSAGE_CHARS
    assert message.endswith("ValueError: boom")


def test_the_runner_container_gets_the_operators_resources_or_none() -> None:
    resources = {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    given = container(objects.RunnerConfig(image="img:1", resources=resources))
    assert given["resources"] == resources
    assert "resources" not in container(objects.RunnerConfig(image="img:1"))


DEFAULT = {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


def merged(runner: dict[str, Any] | None, default: Any = DEFAULT) -> dict[str, dict[str, str]]:
    raw = {"flow": {"ref": "a.b:c"}, **({"runner": runner} if runner is not None else {})}
    return objects.resources(default, models.FlowRunSpec.model_validate(raw))


def test_a_flowruns_runner_resources_replace_the_operators_key_by_key() -> None:
    assert merged(None) == DEFAULT
    assert merged({}) == DEFAULT
    assert merged({"resources": {}}) == DEFAULT
    more = {"resources": {"requests": {"memory": "512Mi"}, "limits": {"memory": 4 * 2**30}}}
    assert merged(more) == {
        "requests": {"cpu": "50m", "memory": "512Mi"},
        "limits": {"memory": str(4 * 2**30)},
    }
    cpu = {"resources": {"limits": {"cpu": "2"}}}
    assert merged(cpu) == {**DEFAULT, "limits": {"memory": "1Gi", "cpu": "2"}}
    assert merged(cpu, default={}) == {"limits": {"cpu": "2"}}


def test_a_default_that_contradicts_the_flowruns_value_gives_way_to_it() -> None:
    """A request above its limit makes a Pod the API server refuses: the FlowRun's value wins."""
    small = merged({"resources": {"limits": {"memory": "128Mi"}}})
    assert small == {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "128Mi"}}
    big = merged({"resources": {"requests": {"memory": "2Gi", "cpu": "100m"}}})
    assert big == {"requests": {"cpu": "100m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    equal = merged({"resources": {"limits": {"memory": "256Mi"}}})  # 256Mi <= 256Mi: kept
    assert equal["requests"]["memory"] == "256Mi"


def test_a_flowrun_asking_more_than_its_own_limit_is_refused_naming_the_fields() -> None:
    wrong = {"resources": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1500m"}}}
    with pytest.raises(FlowRunError) as refused:
        merged(wrong)
    assert refused.value.reason == "InvalidSpec"
    assert refused.value.message == (
        "spec.runner.resources.requests.cpu (2) is above spec.runner.resources.limits.cpu "
        "(1500m): a request must be at most its limit."
    )


def test_the_merged_resources_reach_the_runner_container() -> None:
    resources = merged({"resources": {"limits": {"memory": "3Gi"}}})
    given = container(objects.RunnerConfig(image="img:1", resources=resources))
    assert given["resources"] == {**DEFAULT, "limits": {"memory": "3Gi"}}


def test_a_refused_runner_pod_is_told_with_what_to_do_about_it() -> None:
    quota = 'Error creating: pods "r-x" is forbidden: failed quota: q: must specify limits.memory'
    said = runner_lost.not_created("r", quota, 60)
    assert said.startswith(f"The runner Pod of Job r could not be created for 60s: {quota}. ")
    assert "runner.resources" in said
    assert "spec.runner.resources for this run" in said
    limits = "Error creating: ... maximum cpu usage per Container is 1, but limit is 2."
    assert "--runner-resources" in runner_lost.not_created("r", limits, 60)
    security = 'Error creating: pods "r-x" is forbidden: violates PodSecurity "restricted:latest"'
    other = runner_lost.not_created("r", security, 60)
    assert "runner.resources" not in other
    assert other.endswith("Change what refuses it, then create the FlowRun again.")


def test_the_runner_follows_the_operators_live_status_policy() -> None:
    policy = companion.LivePolicy(min_tasks=250, refresh=7.5)
    env = {
        e["name"]: e["value"]
        for e in container(objects.RunnerConfig(image="i:1", live_status=policy))["env"]
        if "value" in e
    }
    assert runner_process.runner_settings(env).live_status == policy
    default = {
        e["name"]: e["value"]
        for e in container(objects.RunnerConfig(image="i:1"))["env"]
        if "value" in e
    }
    assert runner_process.runner_settings(default).live_status == companion.LivePolicy()


def pending(reason: str, message: str, **meta: Any) -> dict[str, Any]:
    scheduled = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message}
    return {"metadata": {"name": "etl-runner-x", **meta},
            "status": {"phase": "Pending", "conditions": [scheduled]}}  # fmt: skip


def test_a_pod_no_node_takes_is_told_in_the_schedulers_words_with_what_to_do() -> None:
    cpu = pending("Unschedulable", "0/1 nodes are available: 1 Insufficient cpu.")
    found = runner_lost.unschedulable([cpu])
    assert found is not None
    assert found[0] is cpu
    said = runner_lost.not_scheduled("p", "0/1 nodes are available: 1 Insufficient cpu.", 300,
                                      ended=False)  # fmt: skip
    assert said.startswith("The runner Pod p cannot be scheduled yet: 0/1 nodes")
    assert said.endswith("not scheduled within 300s (spec.executor.dask.startupTimeoutSeconds).")
    assert "1 Insufficient cpu." in said
    assert "runner.resources" in said
    assert "--runner-resources" in said
    assert "spec.runner.resources for this run" in said
    ended = runner_lost.not_scheduled("p", "0/1 nodes are available: 1 node(s) had untolerated "
                                      "taint {x: y}.", 300, ended=True)  # fmt: skip
    assert "was not scheduled within 300s" in ended
    assert "runner.resources" not in ended
    assert ended.endswith("then create the FlowRun again.")


def test_a_pod_being_scheduled_or_deleted_is_not_unschedulable() -> None:
    gated = pending("SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates")
    going = pending("Unschedulable", "0/1 nodes", deletionTimestamp="2026-01-01T00:00:00Z")
    assert runner_lost.unschedulable([gated, going]) is None
