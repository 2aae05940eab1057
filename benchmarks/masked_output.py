# ruff: noqa: E402 - the sys.path fix below must run before any other import
"""The cost of masking a process's own output (`flowrun.runs.masked_streams`), per log line.

The runner and the Dask workers of a run with secret parameters pass every write to stdout and
stderr through the run's `Masker`. This logs N records (about 110 characters each, as the
engine's task lines) through a `logging.StreamHandler` to /dev/null: plainly (the baseline, as
without secrets), and through a `MaskedStream` with 1 and 3 secrets of 40 characters, with no
secret in the text (the common case) and with one in every line. Min of 3 interleaved rounds.

The runner and a run's own workers also put a pipe over their descriptors 1 and 2
(`flowrun.runs.masked_fds`): the same N lines written with `os.write` to a descriptor on
/dev/null, straight (the baseline of those rows) and through the pipe and its masking thread
(until the thread has written the last one); and the logging case once more with the handler's
stream on a piped descriptor (Python-level text goes straight out, after a look into the pipe).

    python benchmarks/masked_output.py            # N = 20,000
    python benchmarks/masked_output.py -n 100000
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("benchmarks")]

import argparse
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import TextIO

from flowrun.runs.masked_fds import mask_process
from flowrun.runs.masked_streams import MaskedStream
from flowrun.runs.secrets import Masker

LINE = "Task 'extract-%d': Finished task run for task with final state: 'Success' (%s)"


def secret() -> str:
    return "s3cr3t-" + uuid.uuid4().hex + "-x"


def timed(stream: TextIO, n: int, arg: str) -> float:
    logger = logging.getLogger(f"bench-{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    started = time.perf_counter()
    for i in range(n):
        logger.info(LINE, i, arg)
    stream.flush()
    return time.perf_counter() - started


def written(fd: int, n: int, arg: str, secrets: list[str] | None) -> float:
    """N lines written to descriptor `fd` with `os.write`, through the pipe with `secrets`."""
    started = time.perf_counter()
    restore: Callable[[], None] = (lambda: None) if secrets is None else _piped(fd, secrets)[1]
    for i in range(n):
        os.write(fd, (LINE % (i, arg) + "\n").encode())
    restore()  # the thread has read the pipe empty and written its last line
    return time.perf_counter() - started


def logged_to_pipe(fd: int, n: int, arg: str, secrets: list[str]) -> float:
    stream, restore = _piped(fd, secrets)
    try:
        return timed(stream, n, arg)
    finally:
        restore()


def _piped(fd: int, secrets: list[str]) -> tuple[TextIO, Callable[[], None]]:
    """`fd` piped as a run's process pipes its stdout, and a masked text stream on it."""
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = open(fd, "w", closefd=False)  # noqa: SIM115 - mask_process's now
    try:
        restore = mask_process(Masker(secrets), fds=(fd,))
        return sys.stdout, restore
    finally:
        sys.stdout, sys.stderr = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="log records per case")
    n = parser.parse_args().n
    one, three = [secret()], [secret(), secret(), secret()]
    cases = {
        "plain (no secrets)": (None, "ok"),
        "masked, 1 secret, not in the text": ([*one], "ok"),
        "masked, 3 secrets, not in the text": ([*three], "ok"),
        "masked, 1 secret, in every line": ([*one], one[0]),
    }
    best = dict.fromkeys(cases, float("inf"))
    with open(os.devnull, "w") as null:  # a text stream, as sys.stderr is
        for _ in range(3):
            for name, (secrets, arg) in cases.items():
                stream = null if secrets is None else MaskedStream(null)
                if isinstance(stream, MaskedStream):
                    stream.set_maskers([Masker(secrets or ())])
                best[name] = min(best[name], timed(stream, n, arg))  # type: ignore[arg-type]
    descriptor = {
        "os.write, plain (no secrets)": (None, "ok"),
        "os.write through the pipe, 1 secret, not in the text": ([*one], "ok"),
        "os.write through the pipe, 1 secret, in every line": ([*one], one[0]),
    }
    piped_log = "logged, masked, stream on a piped descriptor, 1 secret, not in the text"
    best |= dict.fromkeys([*descriptor, piped_log], float("inf"))
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        for _ in range(3):
            for name, (secrets, arg) in descriptor.items():
                best[name] = min(best[name], written(fd, n, arg, secrets))
            best[piped_log] = min(best[piped_log], logged_to_pipe(fd, n, "ok", [*one]))
    finally:
        os.close(fd)
    print(f"| case (N = {n:,} lines) | s | µs per line | vs plain |")
    print("|---|---:|---:|---:|")
    for name, seconds in best.items():
        base = best["os.write, plain (no secrets)" if "os.write" in name else "plain (no secrets)"]
        print(f"| {name} | {seconds:.3f} | {seconds / n * 1e6:.1f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
