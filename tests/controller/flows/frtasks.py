"""Task functions for the controller tests, imported by name (`frtasks:add`) where tasks run.

The tests put this directory on PYTHONPATH of the operator (Local clusters run in it) and of
external Dask workers. Side effects go to files under FRTASKS_DIR so a test can count how often
a task really ran (the restart test) or open a gate a task waits for (live status, cancel).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path


def _dir() -> Path:
    return Path(os.environ["FRTASKS_DIR"])


def add(x: int, y: int) -> int:
    return x + y


def double(x: int) -> int:
    return 2 * x


def numbers(n: int) -> list[int]:
    return list(range(n))


def total(values: list[int]) -> int:
    return sum(values)


def fail(message: str = "boom") -> None:
    raise ValueError(message)


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"child {x} is bad")
    return x


def flaky(key: str, failures: int = 1) -> str:
    """Fails the first `failures` runs (counted in a file), then succeeds."""
    counter = _dir() / f"flaky-{key}"
    runs = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(runs + 1))
    if runs < failures:
        raise RuntimeError(f"flaky failure {runs + 1}")
    return "ok"


def echo(value: object) -> object:
    return value


def leak(token: str) -> None:
    """A careless task that puts its secret input into its error message."""
    raise ValueError(f"could not log in with token {token}")


def mark(key: str, value: object = None) -> object:
    """Records one run (a file per run) and passes `value` through."""
    runs = _dir() / f"runs-{key}"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"{os.getpid()}-{time.monotonic_ns()}").write_text("")
    return value


def mark_fail(key: str) -> None:
    """Records one run, then fails (a finished task whose state alone resumes it)."""
    mark(key)
    raise ValueError(f"{key} failed on purpose")


def gate(key: str, value: object = None, timeout: float = 120.0) -> object:
    """Records that it started, then waits until the test creates the gate file."""
    mark(f"{key}-started")
    opened = _dir() / f"gate-{key}"
    deadline = time.monotonic() + timeout
    while not opened.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {key} never opened")
        time.sleep(0.05)
    return mark(key, value)


def tail(value: str, skip: int) -> str:
    """A slice of its input: a secret without its first characters is still a secret."""
    return value[skip:]


def leak_repr(token: str) -> None:
    """Echoes its secret input in a repr (escaped quotes and backslashes)."""
    raise ValueError(f"bad inputs: {[token]!r}")


def blab(token: str) -> str:
    """Puts its secret input into the process's output every Python way: print, logging, a
    warning, and the traceback of a thread that dies of an error spelling it."""
    print(f"token is {token}")
    logging.getLogger("frtasks").warning("logging in with %s", token)
    warnings.warn(f"token {token} is old", UserWarning, stacklevel=1)

    def connect() -> None:
        raise ConnectionError(f"postgresql://app:{token}@db:5432 refused")

    thread = threading.Thread(target=connect)
    thread.start()
    thread.join()
    return "blabbed"


def blab_fds(token: str) -> str:
    """Puts its secret input into the process's descriptors 1 and 2 past Python's streams:
    `os.write`, a subprocess, `sys.stdout.buffer`."""
    os.write(1, f"os.write says {token}\n".encode())
    os.write(2, f"os.write to stderr says {token}\n".encode())
    command = ["sh", "-c", 'printf "sh says %s\\n" "$S"']
    subprocess.run(command, env={**os.environ, "S": token}, check=True)
    sys.stdout.buffer.write(f"buffer says {token}\n".encode())
    sys.stdout.flush()
    return "blabbed"
