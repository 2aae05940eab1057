"""`flowrun.context`: values of the current run, held in a context variable.

The runners set it around each task run (flow name, parameters, task slug, map index, run
count, ...). It carries run facts only, never settings: functions get what they need as
arguments. Being a `ContextVar`, each thread and each task run sees its own values.

    >>> from flowrun import context
    >>> with context(answer=42):
    ...     context.answer, context.get("missing", "default")
    (42, 'default')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CURRENT: ContextVar[Mapping[str, Any]] = ContextVar("flowrun_context", default=_EMPTY)


class Context:
    """Attribute and item access to the current run's values."""

    def __getattr__(self, name: str) -> Any:
        try:
            return _CURRENT.get()[name]
        except KeyError:
            # Prefect's message (its Context is a DotDict); a task's Failed result shows it
            raise AttributeError(f"'Context' object has no attribute '{name}'") from None

    def __getitem__(self, name: str) -> Any:
        return _CURRENT.get()[name]

    def __contains__(self, name: object) -> bool:
        return name in _CURRENT.get()

    def get(self, name: str, default: Any = None) -> Any:
        return _CURRENT.get().get(name, default)

    def to_dict(self) -> dict[str, Any]:
        return dict(_CURRENT.get())

    def copy(self) -> dict[str, Any]:
        return dict(_CURRENT.get())

    def keys(self) -> Any:
        return _CURRENT.get().keys()

    def items(self) -> Any:
        return _CURRENT.get().items()

    def __iter__(self) -> Iterator[str]:
        return iter(_CURRENT.get())

    def __len__(self) -> int:
        return len(_CURRENT.get())

    def __bool__(self) -> bool:
        return True  # the context object itself, empty or not

    def setdefault(self, name: str, default: Any = None) -> Any:
        """The value of `name`, set to `default` first if missing (until the block ends)."""
        current = _CURRENT.get()
        if name not in current:
            self.update({name: default})
            return default
        return current[name]

    def update(self, *mappings: Mapping[str, Any], **values: Any) -> None:
        """Change values for the rest of the enclosing `with context(...)` block."""
        merged = dict(_CURRENT.get())
        for mapping in mappings:
            merged.update(mapping)
        merged.update(values)
        _CURRENT.set(MappingProxyType(merged))

    def __setattr__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __setitem__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __delitem__(self, name: str) -> None:
        merged = dict(_CURRENT.get())
        del merged[name]
        _CURRENT.set(MappingProxyType(merged))

    def __reduce__(self) -> str:
        # By reference: a task function shipped to a Dask worker reads the worker's context.
        return "context"

    @contextmanager
    def __call__(self, *mappings: Mapping[str, Any], **values: Any) -> Iterator[None]:
        """A block with these values added: `with context(a=1)` or `with context({"a": 1})`."""
        merged = dict(_CURRENT.get())
        for mapping in mappings:
            merged.update(mapping)
        merged.update(values)
        token = _CURRENT.set(MappingProxyType(merged))
        try:
            yield
        finally:
            _CURRENT.reset(token)


context = Context()


def push(values: Mapping[str, Any]) -> Token[Mapping[str, Any]]:
    """Add `values` until `pop(token)` (a `with Flow(...)` block's `flow` key)."""
    return _CURRENT.set(MappingProxyType({**_CURRENT.get(), **values}))


def pop(token: Token[Mapping[str, Any]]) -> None:
    _CURRENT.reset(token)


@contextmanager
def using(values: Mapping[str, Any]) -> Iterator[None]:
    """Run a block with exactly `values` as the context (the runners' entry point)."""
    token = _CURRENT.set(MappingProxyType(dict(values)))
    try:
        yield
    finally:
        _CURRENT.reset(token)
