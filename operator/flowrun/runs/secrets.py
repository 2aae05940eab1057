"""The one masker of secret values: every status patch, Event and printed status goes through it.

A task may echo a secret parameter in its result or its error message, as the plain value, in
a JSON or repr spelling (escaped quotes, backslashes, non-ASCII), or as a slice of it (a token
without its prefix). `Masker` replaces each of those with `***`: the whole value in any of its
spellings, and any run of at least `MIN_FRAGMENT` characters that also occurs in one of them.
Shorter secrets can only be matched whole (masking every 3-letter overlap would mask prose).

Structured values (results, status fragments) are masked string by string, keys included, so
the JSON stays valid; a number whose digits give a secret away becomes the string `***`, and a
list whose strings spell a secret together (`list(secret)`) becomes `***` whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
MIN_FRAGMENT = 8


def _quoted(text: str) -> set[str]:
    return {
        text,
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        repr(text)[1:-1],
    }


def spellings(secret: str) -> set[str]:
    """The forms a value takes when printed: as is, inside JSON text, inside a repr, and each
    of those quoted once more (an exception's repr of a message holding a repr)."""
    return {twice for once in _quoted(secret) for twice in _quoted(once)} - {""}


class Masker:
    """Masks the given secret values in texts and JSON values; a no-op without secrets.

    >>> Masker(["s3cr3t-T0KEN"]).text("login with s3cr3t-T0KEN failed; tail T0KEN ok")
    'login with *** failed; tail T0KEN ok'
    >>> Masker(["s3cr3t-T0KEN"]).text("sliced: 3cr3t-T0KE")
    'sliced: ***'
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= spellings(secret)
        self._whole = sorted(forms, key=len, reverse=True)
        self._grams = {
            form[i : i + MIN_FRAGMENT]
            for form in forms
            for i in range(len(form) - MIN_FRAGMENT + 1)
        }

    def __bool__(self) -> bool:
        return bool(self._whole)

    def __or__(self, other: Masker) -> Masker:
        """One masker of both's secrets, as if made from all of them at once (masking with one
        after the other could leave the rest of a secret that shares a slice with another)."""
        both = Masker()
        both._whole = sorted(set(self._whole) | set(other._whole), key=len, reverse=True)
        both._grams = self._grams | other._grams
        return both

    def text(self, text: str) -> str:
        if not self._whole:
            return text
        if self._grams:
            text = self._mask_fragments(text)
        for form in self._whole:
            text = text.replace(form, MASK)
        return text

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self.text(text)

    def value(self, value: Any) -> Any:
        """A JSON value with every string (and key) masked; numbers that leak become `***`."""
        if not self._whole:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return self._whole_list([self.value(v) for v in value])
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown = json.dumps(value)
            return MASK if self.text(shown) != shown else value
        return value

    def _whole_list(self, masked: list[Any]) -> Any:
        """A secret spread over a list's strings (`list(secret)`) masks the whole list."""
        joined = "".join(v for v in masked if isinstance(v, str))
        return MASK if self.text(joined) != joined else masked

    def _mask_fragments(self, text: str) -> str:
        """Every run of text covered by windows that occur in a secret's spelling."""
        covered = [False] * len(text)
        for i in range(len(text) - MIN_FRAGMENT + 1):
            if text[i : i + MIN_FRAGMENT] in self._grams:
                covered[i : i + MIN_FRAGMENT] = [True] * MIN_FRAGMENT
        if not any(covered):
            return text
        out: list[str] = []
        for i, char in enumerate(text):
            if not covered[i]:
                out.append(char)
            elif i == 0 or not covered[i - 1]:
                out.append(MASK)
        return "".join(out)
