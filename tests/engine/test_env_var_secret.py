"""EnvVarSecret, as Prefect 1.x's docs use it (concepts/secrets: `EnvVarSecret("PATH")`)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from flowrun import Flow, task
from flowrun.tasks.secrets import EnvVarSecret


@task
def echo(x: Any) -> Any:
    return x


def test_env_var_secret_reads_the_variable_where_the_task_runs(executor_ld: Any) -> None:
    # the Dask workers inherited this process's environment when the cluster started
    with Flow("secrets") as flow:
        secret = EnvVarSecret("PATH")
        echoed = echo(secret)
        missing = echo(EnvVarSecret("FLOWRUN_TEST_UNSET_VARIABLE"))
    final = flow.run(executor=executor_ld)
    assert secret.name == "PATH"
    assert secret.checkpoint is False
    assert final.result[echoed].result == os.environ["PATH"]
    assert final.result[missing].result is None


def test_env_var_secret_casts_refuses_a_result_and_can_require_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWRUN_TEST_SECRET", "42")
    assert EnvVarSecret("FLOWRUN_TEST_SECRET", cast=int).run() == 42
    assert EnvVarSecret().run(name="FLOWRUN_TEST_SECRET") == "42"
    with pytest.raises(ValueError, match="not configurable"):
        EnvVarSecret("X", result=object())
    required = EnvVarSecret("FLOWRUN_TEST_UNSET_VARIABLE", raise_if_missing=True)
    with pytest.raises(ValueError, match="Environment variable not set"):
        required.run()
