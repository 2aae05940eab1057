"""Operator settings: one frozen value built from flags and environment, passed explicitly.

Every flag has an environment variable (`FLOWRUN_<NAME>`), so the Helm chart can set either.
Nothing reads the environment after start-up; the daemon gets this value through kopf's memo.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import pydantic

from flowrun.api.dask_spec import ResourceRequirements
from flowrun.controller.runner_lost import CREATE_GRACE
from flowrun.controller.runner_objects import above_limits
from flowrun.runs import companion

ENV_PREFIX = "FLOWRUN_"
# The runner Pod's container resources: requests so that namespaces whose ResourceQuota asks
# for them can run FlowRuns, and the scheduler places runners by them; no limits, since with
# the Local executors the flow itself runs in the runner, and its needs are the flow's. Small:
# on cluster Kubernetes the runner is a Dask client that mostly waits.
DEFAULT_RUNNER_RESOURCES: Mapping[str, Mapping[str, str]] = {
    "requests": {"cpu": "50m", "memory": "256Mi"}
}


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces (cluster-wide mode)
    max_concurrent_runs: int = 16
    default_image: str | None = None
    allow_in_process: bool = False
    local_processes: bool = False
    metrics_port: int | None = None
    liveness_port: int | None = None
    status_interval: float = 1.0  # at most one status patch per FlowRun per interval
    watch_server_timeout: int = 120
    watch_client_timeout: int = 150
    cancel_grace: float = 20.0  # how long a cancelled runner may take to wind down
    # How long the API server may refuse a runner's Pod (a quota) before the run ends Failed.
    runner_create_grace: float = CREATE_GRACE
    peering: bool = False
    # Operator restarts (not clean hand-overs) a run in flight may see before it ends Failed:
    # a task that kills the operator (os._exit, a crash, memory) must not loop forever.
    max_run_restarts: int = 3
    runner_resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: DEFAULT_RUNNER_RESOURCES
    )
    live_status: companion.LivePolicy = field(default_factory=companion.LivePolicy)

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def _env_bool(env: Mapping[str, str], name: str) -> bool:
    return env.get(ENV_PREFIX + name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(ENV_PREFIX + name, "").strip()
    return int(raw) if raw else None


def _env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A float env var; unset or empty, the default (as `or` reads it: 0 also means default)."""
    return float(env.get(ENV_PREFIX + name) or default)


def _first(value: int | None, default: int) -> int:
    return default if value is None else value  # 0 is a value, not "unset"


def _live_status(args: argparse.Namespace) -> companion.LivePolicy:
    """The flags, else the env vars (an env var a flag overrides is not read)."""
    flags = {
        companion.ENV_TASKS: args.live_status_tasks,
        companion.ENV_REFRESH: args.live_status_refresh,
    }
    env = {k: v for k, v in args.live_status_env.items() if flags[k] is None}
    live = companion.LivePolicy.from_env(env)
    return companion.LivePolicy.checked(
        _first(args.live_status_tasks, live.min_tasks),
        live.refresh if args.live_status_refresh is None else args.live_status_refresh,
    )


def runner_resources(text: str) -> dict[str, dict[str, str]]:
    """`--runner-resources`: a container's `resources` as JSON; "" or "{}" sets none."""
    flag = "--runner-resources (env FLOWRUN_RUNNER_RESOURCES)"
    example = '{"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}'
    try:
        parsed = ResourceRequirements.model_validate_json(text.strip() or "{}")
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ValueError(f"{flag}: {problems}; expected JSON such as {example}") from None
    given = {k: {n: str(q) for n, q in v.items()} for k, v in parsed.model_dump().items() if v}
    if wrong := above_limits(given.get("requests", {}), given.get("limits", {})):
        raise ValueError(f"{flag}: requests above limits for {', '.join(wrong)}")
    return given


def configure(parser: argparse.ArgumentParser, env: Mapping[str, str] | None = None) -> None:
    """Add the operator's flags, with defaults taken from the environment."""
    env = os.environ if env is None else env
    defaults = OperatorSettings()
    ns_env = [n for n in env.get(ENV_PREFIX + "NAMESPACES", "").split(",") if n.strip()]
    parser.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        default=None,
        help="namespace to watch (repeatable; env FLOWRUN_NAMESPACES=a,b); default: all",
    )
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch all namespaces (the default)"
    )
    parser.set_defaults(env_namespaces=ns_env)
    parser.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=_env_int(env, "MAX_CONCURRENT_RUNS") or defaults.max_concurrent_runs,
        help="FlowRuns running at once; the others wait in phase Pending",
    )
    parser.add_argument(
        "--default-image",
        default=env.get(ENV_PREFIX + "DEFAULT_IMAGE") or None,
        help="Dask image when spec.executor.dask.image is not set",
    )
    parser.add_argument(
        "--allow-in-process",
        action="store_true",
        default=_env_bool(env, "ALLOW_IN_PROCESS"),
        help="allow executors and clusters that run user code inside the operator "
        "(Local, Synchronous, Dask cluster Local); off by default: a trust boundary",
    )
    parser.add_argument(
        "--local-processes",
        action="store_true",
        default=_env_bool(env, "LOCAL_PROCESSES"),
        help="Local Dask clusters use worker processes instead of threads",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=_env_int(env, "METRICS_PORT"),
        help="serve Prometheus metrics on this port (default: off)",
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=_env_int(env, "LIVENESS_PORT"),
        help="serve kopf's liveness probe on this port at /healthz (default: off)",
    )
    parser.add_argument(
        "--status-interval",
        type=float,
        default=_env_seconds(env, "STATUS_INTERVAL", defaults.status_interval),
        help="minimum seconds between status patches of one FlowRun",
    )
    parser.add_argument(
        "--cancel-grace",
        type=float,
        default=_env_seconds(env, "CANCEL_GRACE", defaults.cancel_grace),
        help="seconds a cancelled (or past-deadline) run may take to wind down before it is "
        "stopped and its runner deleted",
    )
    parser.add_argument(
        "--runner-create-grace",
        type=float,
        default=_env_seconds(env, "RUNNER_CREATE_GRACE", defaults.runner_create_grace),
        help="seconds the API server may refuse a runner's Pod (a ResourceQuota, a LimitRange) "
        "before the run ends Failed RunnerNotCreated: a used-up quota may free up meanwhile",
    )
    parser.add_argument(
        "--max-run-restarts",
        type=int,
        default=_first(_env_int(env, "MAX_RUN_RESTARTS"), defaults.max_run_restarts),
        help="times an operator may crash or be killed while a run is in flight before the "
        "run ends Failed (a clean shutdown hands the run over and does not count)",
    )
    parser.add_argument(
        "--runner-resources",
        default=env.get(ENV_PREFIX + "RUNNER_RESOURCES", json.dumps(DEFAULT_RUNNER_RESOURCES)),
        help="the runner Pods' container resources, as JSON (requests, limits); "
        f"default: {json.dumps(DEFAULT_RUNNER_RESOURCES)}; '{{}}' for none",
    )
    # Read from the env vars in `from_args` (only `flowrun operator` refuses a bad one).
    parser.set_defaults(live_status_env={k: env.get(k, "") for k in companion.ENV_TASKS_REFRESH})
    parser.add_argument(
        "--live-status-tasks",
        type=int,
        help="inline flows of this many tasks or more write their routine progress to a small "
        "ConfigMap beside the FlowRun, and the FlowRun at most every --live-status-refresh "
        f"seconds (each FlowRun write costs the API server the whole flow); 0: never; default: "
        f"env {companion.ENV_TASKS}, else {companion.BIG_FLOW_TASKS}",
    )
    parser.add_argument(
        "--live-status-refresh",
        type=float,
        help="most seconds between two FlowRun writes of such a run's routine progress; default: "
        f"env {companion.ENV_REFRESH}, else {companion.REFRESH:g}",
    )
    parser.add_argument(
        "--peering",
        action="store_true",
        default=_env_bool(env, "PEERING"),
        help="use kopf peering (needs KopfPeering objects); default: standalone",
    )


def from_args(args: argparse.Namespace) -> OperatorSettings:
    namespaces: list[str] = list(args.namespaces or args.env_namespaces or [])
    if args.all_namespaces:
        namespaces = []
    if args.max_concurrent_runs < 1:
        raise ValueError("--max-concurrent-runs must be at least 1")
    if args.max_run_restarts < 0:
        raise ValueError("--max-run-restarts must be at least 0")
    return OperatorSettings(
        namespaces=tuple(n.strip() for n in namespaces),
        max_concurrent_runs=args.max_concurrent_runs,
        default_image=args.default_image,
        allow_in_process=bool(args.allow_in_process),
        local_processes=bool(args.local_processes),
        metrics_port=args.metrics_port,
        liveness_port=args.liveness_port,
        status_interval=max(0.05, float(args.status_interval)),
        cancel_grace=max(0.0, float(args.cancel_grace)),
        runner_create_grace=max(0.0, float(args.runner_create_grace)),
        peering=bool(args.peering),
        max_run_restarts=args.max_run_restarts,
        runner_resources=runner_resources(args.runner_resources),
        live_status=_live_status(args),
    )
