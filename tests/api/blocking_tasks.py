"""Task functions for `flowrun run` tests that need a task to be running (imported by name)."""

from __future__ import annotations

import threading
from pathlib import Path


def block_until_cancelled(marker: str) -> None:
    """Say "I am running" through a file, then work until the engine cancels the task."""
    Path(marker).write_text("running")
    idle = threading.Event()
    while not idle.wait(0.05):  # stands for real work; the engine interrupts it
        pass
