"""Small, deterministic task functions for the example FlowRuns (`examples/*.yaml`).

Plain functions: an inline flow names them by `fn: "flowrun.examples.etl:NAME"`, and the
engine resolves them where the task runs. `flowrun.examples.flows` builds the same pipeline
as a `Flow` object for `flow.ref`.
"""

from __future__ import annotations

from flowrun import context


def hello(name: str = "world") -> str:
    return f"Hello, {name}!"


def extract(date: str, limit: int = 10) -> list[dict[str, object]]:
    """`limit` rows for `date` (deterministic, so runs can be compared)."""
    return [{"date": date, "id": i, "amount": i * 10} for i in range(limit)]


def transform(rows: list[dict[str, object]]) -> list[int]:
    return [int(str(row["amount"])) * 2 for row in rows]


def flaky_transform(rows: list[dict[str, object]], fail_runs: int = 1) -> list[int]:
    """Fails its first `fail_runs` runs (a transient error), then works: shows retries."""
    run = int(context.get("task_run_count", 1))
    if run <= fail_runs:
        raise ConnectionError(f"transient failure on run {run}")
    return transform(rows)


def load(values: list[int]) -> int:
    """'Loads' the values and returns how much was loaded."""
    return sum(values)


def numbers(count: int = 5) -> list[int]:
    return list(range(1, count + 1))


def square(x: int) -> int:
    return x * x


def total(values: list[int]) -> int:
    return sum(values)


def fail(message: str = "this task always fails") -> None:
    raise RuntimeError(message)
