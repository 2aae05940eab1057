"""`flowrun.utilities.collections`: DotDict, a dict whose keys are also attributes."""

from __future__ import annotations

from typing import Any


class DotDict(dict[str, Any]):
    """`DotDict(a=1).a == 1`; nested dicts stay plain dicts.

    >>> d = DotDict(a=1)
    >>> d.b = 2
    >>> d.a + d["b"]
    3
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, DotDict) else v for k, v in self.items()}


__all__ = ["DotDict"]
