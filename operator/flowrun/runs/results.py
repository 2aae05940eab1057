"""Return-task results as strict JSON: what a Kubernetes API server (and any JSON reader) takes.

Python's `json` writes `NaN`, `Infinity` and integers of any size; the API server refuses the
whole status patch for one of them (400), which used to leave a run without its final phase.
Here such numbers become strings (`"NaN"`, `"Infinity"`, `"-Infinity"`, the integer's digits)
and `notes` says which results were changed, so a reader is not misled.

These functions run where the result lives (a Dask worker, when the run uses one), so only
JSON text crosses to the operator.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flowrun.api.status import StatusLimits

MAX_RESULT_BYTES = StatusLimits.result_bytes  # the one cap (status.cap_results applies it)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what the API server's JSON decoder keeps exact


def strict(value: Any) -> tuple[Any, bool]:
    """`value` with every number JSON cannot carry as a string; True if anything changed.

    >>> strict({"a": [float("nan"), 1.5, 2**70]})
    ({'a': ['NaN', 1.5, '1180591620717411303424']}, True)
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value, False
    if isinstance(value, float):
        if math.isfinite(value):
            return value, False
        return ("NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"), True
    if isinstance(value, int):
        return (value, False) if INT_MIN <= value <= INT_MAX else (str(value), True)
    if isinstance(value, dict):
        items = [(k, *strict(v)) for k, v in value.items()]
        return {k: v for k, v, _ in items}, any(c for _, _, c in items)
    if isinstance(value, list | tuple):
        pairs = [strict(v) for v in value]
        return [v for v, _ in pairs], any(c for _, c in pairs)
    return value, False  # not JSON at all: json.dumps refuses it below


def json_text(value: Any, limit: int = MAX_RESULT_BYTES) -> str | None:
    """Strict JSON text of a result if it is JSON-able and at most `limit` bytes, else None.

    Non-finite and out-of-range numbers are written as strings (see `strict`).
    """
    converted, _ = strict(value)
    try:
        text = json.dumps(converted, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if len(text.encode()) <= limit else None
