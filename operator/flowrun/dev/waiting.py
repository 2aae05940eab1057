"""Polling with a deadline, for the demo, the benchmarks and the tests that drive the dev plane.

Conditions on a real API server or operator become true at some unknown moment: poll them with a
deadline instead of sleeping a guessed amount.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.25, what: str = ""
) -> Any:
    """Call `check` until it returns something truthy and return that; TimeoutError after `timeout`.

    Example:
        wait_for(lambda: phase("etl") == "Succeeded", timeout=30, what="etl to succeed")
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what or check}: {last!r}")
