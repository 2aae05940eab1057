"""SecretBase and EnvVarSecret, with Prefect 1.x's arguments and behaviour."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from flowrun.engine.task import Task


class SecretBase(Task):
    """A task whose value is a secret: never checkpointed, and no `result=` may be given
    (Prefect refuses one too), so the value is not written anywhere."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("result"):
            raise ValueError("Result types for Secrets are not configurable.")
        kwargs["checkpoint"] = False
        super().__init__(**kwargs)


class EnvVarSecret(SecretBase):
    """The value of the environment variable `name` where the task runs (None if unset,
    or a ValueError with `raise_if_missing=True`), passed through `cast` if given."""

    def __init__(
        self,
        name: str | None = None,
        cast: Callable[[Any], Any] | None = None,
        raise_if_missing: bool = False,
        **kwargs: Any,
    ) -> None:
        self.secret_name = name
        self.cast = cast
        self.raise_if_missing = raise_if_missing
        super().__init__(name=name, **kwargs)

    def run(self, name: str | None = None) -> Any:
        name = self.secret_name if name is None else name
        if name is None:
            raise ValueError("A secret name must be provided.")
        if self.raise_if_missing and name not in os.environ:
            raise ValueError(f"Environment variable not set: {name}")
        value = os.getenv(name)
        if value is not None and self.cast is not None:
            value = self.cast(value)
        return value
