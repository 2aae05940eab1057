"""The run service's masker and strict result encoding, as pure functions."""

from __future__ import annotations

import json
import math

import pytest

from flowrun.runs import results
from flowrun.runs.secrets import MASK, Masker

SECRET = 'pa"ss\\wörd-T0KEN-1234'


@pytest.mark.parametrize(
    "shown",
    [
        SECRET,
        json.dumps(SECRET),
        json.dumps(SECRET, ensure_ascii=False),
        repr(SECRET),
        repr([SECRET]),
        f"login with {SECRET} failed",
        SECRET[3:],
        SECRET[:8],
        SECRET[5:13],
    ],
)
def test_every_spelling_and_long_fragment_is_masked(shown: str) -> None:
    masked = Masker([SECRET]).text(shown)
    for i in range(len(SECRET) - 7):
        assert SECRET[i : i + 8] not in masked
    assert MASK in masked


def test_short_fragments_and_other_text_stay() -> None:
    masker = Masker([SECRET])
    assert masker.text("T0KEN ok; hello world") == "T0KEN ok; hello world"
    assert Masker([]).text(SECRET) == SECRET
    assert Masker(["abc"]).text("xabcx abd") == f"x{MASK}x abd"


def test_two_maskers_joined_mask_as_one_made_of_both_secrets() -> None:
    """A stream masked for two runs at once (a shared Dask worker): secrets sharing a slice."""
    first, second = "first-s3cr3t-value", "second-s3cr3t-value"
    both = Masker([first]) | Masker([second])
    shown = f"{first} and {second}, {second[2:]}"
    assert both.text(shown) == Masker([first, second]).text(shown) == f"{MASK} and {MASK}, {MASK}"
    assert Masker([first]).text(Masker([second]).text(second)) == MASK
    assert Masker([second]).text(Masker([first]).text(second)) == f"second{MASK}"  # why join


def test_json_values_are_masked_string_by_string() -> None:
    masker = Masker([SECRET, "12345678"])
    value = {
        "str": SECRET,
        "chars": list(SECRET),
        SECRET: "as a key",
        "number": 12345678,
        "ok": [1, 2.5, "x", True, None],
        "nested": {"deep": [f"v={SECRET}"]},
    }
    masked = masker.value(value)
    text = json.dumps(masked, ensure_ascii=False)
    assert SECRET[2:10] not in text
    assert "12345678" not in text
    assert masked["chars"] == MASK
    assert masked["number"] == MASK
    assert masked["ok"] == [1, 2.5, "x", True, None]
    assert masked["nested"] == {"deep": [f"v={MASK}"]}


def test_results_become_strict_json() -> None:
    value = {"nan": math.nan, "inf": [math.inf, -math.inf], "big": 10**400, "ok": 2**63 - 1}
    text = results.json_text(value)
    assert text is not None
    assert json.loads(text) == {
        "nan": "NaN",
        "inf": ["Infinity", "-Infinity"],
        "big": str(10**400),
        "ok": 2**63 - 1,
    }
    assert results.json_text(object()) is None
    assert results.json_text("x" * 100, limit=50) is None
