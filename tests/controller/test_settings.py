"""Operator settings come from flags, with defaults from FLOWRUN_* environment variables."""

from __future__ import annotations

import argparse
import re

import pytest

from flowrun.controller import runner_process, settings
from flowrun.runs import companion


def parse(argv: list[str], env: dict[str, str] | None = None) -> settings.OperatorSettings:
    parser = argparse.ArgumentParser()
    settings.configure(parser, env=env or {})
    return settings.from_args(parser.parse_args(argv))


def test_defaults_are_safe() -> None:
    s = parse([])
    assert s.clusterwide
    assert s.allow_in_process is False
    assert s.metrics_port is None
    assert s.max_concurrent_runs == 16


def test_flags() -> None:
    s = parse(["-n", "a", "-n", "b", "--max-concurrent-runs", "4", "--allow-in-process",
               "--default-image", "acme/etl:1", "--metrics-port", "9090"])  # fmt: skip
    assert s.namespaces == ("a", "b")
    assert not s.clusterwide
    assert (s.max_concurrent_runs, s.allow_in_process) == (4, True)
    assert (s.default_image, s.metrics_port) == ("acme/etl:1", 9090)


def test_environment_provides_defaults_and_flags_win() -> None:
    env = {
        "FLOWRUN_NAMESPACES": "x,y",
        "FLOWRUN_ALLOW_IN_PROCESS": "true",
        "FLOWRUN_MAX_CONCURRENT_RUNS": "8",
        "FLOWRUN_METRICS_PORT": "9100",
    }
    s = parse([], env)
    assert s.namespaces == ("x", "y")
    assert s.allow_in_process is True
    assert (s.max_concurrent_runs, s.metrics_port) == (8, 9100)
    assert parse(["-n", "z"], env).namespaces == ("z",)
    assert parse(["-A"], env).clusterwide


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        parse(["--max-concurrent-runs", "0"])


def test_run_restarts_limit_from_flag_or_env() -> None:
    assert parse([]).max_run_restarts == 3
    assert parse([], {"FLOWRUN_MAX_RUN_RESTARTS": "0"}).max_run_restarts == 0
    assert parse(["--max-run-restarts", "5"]).max_run_restarts == 5
    with pytest.raises(ValueError, match="at least 0"):
        parse(["--max-run-restarts", "-1"])


def test_runner_create_grace_from_flag_or_env() -> None:
    assert parse([]).runner_create_grace == 60.0
    assert parse([], {"FLOWRUN_RUNNER_CREATE_GRACE": "300"}).runner_create_grace == 300.0
    assert parse(["--runner-create-grace", "5"]).runner_create_grace == 5.0
    assert parse(["--runner-create-grace", "-1"]).runner_create_grace == 0.0


def test_runner_resources_default_to_modest_requests_and_come_from_flag_or_env() -> None:
    assert parse([]).runner_resources == {"requests": {"cpu": "50m", "memory": "256Mi"}}
    given = '{"requests": {"cpu": "1", "memory": 512}, "limits": {"memory": "1Gi"}}'
    assert parse(["--runner-resources", given]).runner_resources == {
        "requests": {"cpu": "1", "memory": "512"},
        "limits": {"memory": "1Gi"},
    }
    env = {"FLOWRUN_RUNNER_RESOURCES": '{"limits": {"cpu": "500m"}}'}
    assert parse([], env).runner_resources == {"limits": {"cpu": "500m"}}
    assert parse(["--runner-resources", "{}"], env).runner_resources == {}
    assert parse(["--runner-resources", ""]).runner_resources == {}


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ('{"request": {"cpu": "1"}}', "request: Extra inputs are not permitted"),
        ('{"requests": {"cpu": "lots"}}', "requests.cpu: 'lots' is not a Kubernetes quantity"),
        ('{"requests": {"memory": "1GB"}}', "requests.memory: '1GB' is not"),
        ("cpu=1", "value: Invalid JSON"),
        ('{"requests": {"cpu": "-1"}}', "requests.cpu: '-1' is not a Kubernetes quantity"),
        (
            '{"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": 1, "memory": "2Gi"}}',
            "requests above limits for cpu",
        ),
    ],
)
def test_bad_runner_resources_are_refused_naming_the_flag_and_field(given: str, names: str) -> None:
    with pytest.raises(ValueError, match="--runner-resources") as refused:
        parse(["--runner-resources", given])
    assert names in str(refused.value)


def test_live_status_policy_from_flag_or_env() -> None:
    default = parse([]).live_status
    assert (default.min_tasks, default.refresh) == (1000, 60.0)
    env = {"FLOWRUN_LIVE_STATUS_TASKS": "200", "FLOWRUN_LIVE_STATUS_REFRESH": "15"}
    assert parse([], env).live_status == companion.LivePolicy(200, 15.0)
    assert parse(["--live-status-tasks", "0"], env).live_status.min_tasks == 0  # 0 is a value


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--live-status-tasks", "-1"], "--live-status-tasks"),
        (["--live-status-refresh", "0"], "--live-status-refresh"),
    ],
)
def test_a_bad_live_status_policy_is_refused_naming_the_flag(argv: list[str], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        parse(argv)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLOWRUN_LIVE_STATUS_TASKS": "-1"}, "FLOWRUN_LIVE_STATUS_TASKS must be at least 0"),
        ({"FLOWRUN_LIVE_STATUS_TASKS": "many"}, "FLOWRUN_LIVE_STATUS_TASKS='many' is not a whole"),
        ({"FLOWRUN_LIVE_STATUS_REFRESH": "0"}, "FLOWRUN_LIVE_STATUS_REFRESH must be a number of"),
        ({"FLOWRUN_LIVE_STATUS_REFRESH": "nan"}, "FLOWRUN_LIVE_STATUS_REFRESH must be a number of"),
        ({"FLOWRUN_LIVE_STATUS_REFRESH": "soon"}, "FLOWRUN_LIVE_STATUS_REFRESH='soon' is not a"),
    ],
)
def test_a_bad_live_status_env_var_is_refused_naming_it(env: dict[str, str], message: str) -> None:
    """By the operator as by its runner (the same parser), and only where it is used."""
    parser = argparse.ArgumentParser()
    settings.configure(parser, env=env)
    args = parser.parse_args([])  # building the CLI (any subcommand) does not refuse it
    with pytest.raises(ValueError, match=re.escape(message)):
        settings.from_args(args)
    with pytest.raises(ValueError, match=re.escape(message)):
        runner_process.runner_settings(env)
    # The flags win over the env vars: the operator starts.
    flags = ["--live-status-tasks", "5", "--live-status-refresh", "2"]
    assert parse(flags, env).live_status == companion.LivePolicy(5, 2.0)
