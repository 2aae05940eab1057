"""The live status of a big inline flow, written to a small companion object beside its FlowRun.

Every status write of a FlowRun makes the API server decode, patch, copy, track and encode the
whole object, its spec included: about a second for a 10,000-task inline flow however small the
patch (`benchmarks/status_writes.py`). For a run of `LivePolicy.min_tasks` inline tasks or more
(1,000 unless the operator is told otherwise), the status writer therefore sends its routine
patches (progress, counts, task states) to a small companion object owned by the FlowRun (the
operator's: a ConfigMap, `LiveSink`), whose writes cost what a 1-task FlowRun's do, and writes
the FlowRun itself only when something else changes (phase, conditions, results, cluster, ...),
when it flushes (the run's end), and otherwise at most once every `LivePolicy.refresh` seconds
(60 by default), each time with everything the companion got in between, and a refresh after
its last write at the latest, even when nothing else comes (a run waiting on one long task). So
the FlowRun's status is complete at every phase change and at the end, exactly as for a small
run, and the number of its expensive writes is bounded by the run's phases and its duration.

Even so, a finished 10,000-task run's bounded task map (about 200 KB) made its FlowRun's final
write cost 14-15x a 1-task FlowRun's. So a big run's FlowRun carries a lean task map
(`StatusLimits.lean_tasks_bytes`, failures and unfinished tasks first, `tasksOmitted` counting
the rest), and each of its writes is followed by the companion's, which gets the whole bounded map
(`TASK_MAP` keys: `tasks` as JSON, `tasksOmitted`) whenever it changed; `status.statusConfigMap`
names the companion. A restarted run reads both back (`known_tasks`), so no finished task that
only the companion lists runs again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from flowrun.api.admission import BIG_INLINE_TASKS

# The default threshold is the one the API server warns at: the same cost, one figure.
BIG_FLOW_TASKS = BIG_INLINE_TASKS
REFRESH = 60.0  # seconds between two FlowRun writes of routine progress, at most one per
# Keys that change all the time while a run goes on; any other key goes to the FlowRun at once.
ROUTINE = frozenset({"message", "progress", "failed", "taskCounts", "tasks", "tasksOmitted"})
# What the companion holds: what a reader polls to follow a run.
LIVE = ("phase", "message", "progress", "failed", "taskCounts")
# The whole bounded task map, written with each write of the FlowRun (which lists only part).
TASK_MAP = ("tasks", "tasksOmitted")
# The policy in the environment: the operator's (as its flags) and, passed on, its runners'.
ENV_TASKS = "FLOWRUN_LIVE_STATUS_TASKS"
ENV_REFRESH = "FLOWRUN_LIVE_STATUS_REFRESH"
ENV_TASKS_REFRESH = (ENV_TASKS, ENV_REFRESH)
FLAGS = ("--live-status-tasks", "--live-status-refresh")
N = TypeVar("N", int, float)


class LiveSink(Protocol):
    async def patch_live(self, data: Mapping[str, str | None]) -> None:
        """Merge `data` into the companion (creating it when absent, where allowed)."""


@dataclass(frozen=True)
class LivePolicy:
    """Which runs get a companion, and how stale their FlowRun's progress may grow: the
    operator's choice (--live-status-tasks, --live-status-refresh), passed on to its runners.
    A cluster whose API server has room to spare may want fresher FlowRuns; a busy one, a lower
    threshold (a FlowRun status write costs the API server 0.15-0.2 ms per inline task)."""

    min_tasks: int = BIG_FLOW_TASKS  # 0: no run gets a companion
    refresh: float = REFRESH

    @classmethod
    def checked(cls, min_tasks: int, refresh: float, names: tuple[str, str] = FLAGS) -> LivePolicy:
        """The policy, or a ValueError naming where the bad value came from (`names`: the
        flags, or the env vars)."""
        if min_tasks < 0:
            raise ValueError(f"{names[0]} must be at least 0 (0: no companion ConfigMap)")
        if not refresh > 0:
            raise ValueError(f"{names[1]} must be a number of seconds above 0")
        return cls(min_tasks, refresh)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LivePolicy:
        """The policy `env` sets (ENV_TASKS, ENV_REFRESH); unset or empty: the default's.

        >>> LivePolicy.from_env({ENV_TASKS: "0"})
        LivePolicy(min_tasks=0, refresh=60.0)
        """
        return cls.checked(
            _env_number(env, ENV_TASKS, int, BIG_FLOW_TASKS),
            _env_number(env, ENV_REFRESH, float, REFRESH),
            (ENV_TASKS, ENV_REFRESH),
        )

    def env(self) -> dict[str, str]:
        """The policy as env vars, as `from_env` reads them back (a runner Pod's)."""
        return {ENV_TASKS: str(self.min_tasks), ENV_REFRESH: f"{self.refresh:g}"}

    def is_big(self, spec: Mapping[str, Any]) -> bool:
        """A FlowRun spec (raw dict) whose inline flow is big enough for a companion."""
        tasks = (spec.get("flow") or {}).get("tasks") or []
        return 0 < self.min_tasks <= len(tasks)


def _env_number(env: Mapping[str, str], name: str, kind: type[N], default: N) -> N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name}={raw!r} is not {what}") from None
    return value


def routine(patch: Mapping[str, Any]) -> bool:
    """A status patch that may wait for the FlowRun (only routine keys)."""
    return set(patch) <= ROUTINE


def without_nulls(value: Any) -> Any:
    """A merged merge-patch value as the object would hold it (a null deletes its key)."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return value


def live_data(patch: Mapping[str, Any], merged: Mapping[str, Any]) -> dict[str, str | None]:
    """The companion's part of a status patch, as ConfigMap data: each live key the patch
    touches, with its whole value from `merged` (all patches so) as a string (JSON but for
    strings); a ConfigMap value is replaced whole, so a diff of it would lose keys.

    >>> live_data({"failed": 0, "tasks": {}}, {"phase": "Running", "failed": 0})
    {'failed': '0'}
    """
    out: dict[str, str | None] = {}
    for key in LIVE:
        if key in patch:
            value = without_nulls(merged.get(key))
            out[key] = value if value is None or isinstance(value, str) else json.dumps(value)
    return out


def task_map_data(task_map: Mapping[str, Any]) -> dict[str, str]:
    """The whole task map (`render.task_map`) as the companion's `TASK_MAP` keys.

    >>> task_map_data({"tasks": {"a": {"state": "Success"}}, "tasksOmitted": 0})
    {'tasks': '{"a": {"state": "Success"}}', 'tasksOmitted': '0'}
    """
    return {key: json.dumps(task_map.get(key) or ({} if key == "tasks" else 0)) for key in TASK_MAP}


def known_tasks(flowrun_tasks: Mapping[str, Any] | None, data: Mapping[str, str]) -> dict[str, Any]:
    """What a restarted big run knows of its tasks: the companion's map (`data`), with the
    FlowRun's entries over it (the FlowRun is written first; a companion write may have failed).
    A companion map that is not JSON counts as none: the FlowRun's entries are still right.

    >>> known_tasks({"a": {"state": "Failed"}}, {"tasks": '{"a": {}, "b": {"state": "Success"}}'})
    {'a': {'state': 'Failed'}, 'b': {'state': 'Success'}}
    """
    try:
        full = json.loads(data.get("tasks") or "{}")
    except ValueError:
        full = {}
    if not isinstance(full, dict):
        full = {}
    return {**full, **(flowrun_tasks or {})}
