"""What a run's process writes to its file descriptors 1 and 2 itself (`os.write`, subprocesses,
C code, `sys.stdout.buffer`, `sys.__stdout__`) through the run's masker (`flowrun.runs.
masked_fds`), shown in real processes: a runner-like interpreter, `flowrun run`, and the worker
processes of a LocalCluster."""

from __future__ import annotations

import os
import pty
import re
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import distributed
import pytest
import yaml

from flowrun.runs.secrets import MASK, Masker
from flowrun.runs.worker_masking import masked_workers

PROLOGUE = """
import ctypes, os, subprocess, sys, threading
from flowrun.runs.masked_fds import mask_process
from flowrun.runs.secrets import Masker
secret = sys.argv[1]
mask_process(Masker([secret]))
"""

EVERY_WAY = PROLOGUE + textwrap.dedent(
    """
    print("python", secret)
    os.write(1, f"os.write {secret}\\n".encode())
    print("python again")
    subprocess.run(["sh", "-c", "echo sh $S"], env={**os.environ, "S": secret}, check=True)
    subprocess.run(["echo", "echo", secret], check=True)
    sys.stdout.buffer.write(f"buffer {secret}\\n".encode())
    sys.stdout.flush()
    ctypes.CDLL(None).printf(f"printf {secret}\\n".encode())  # held by libc until the exit
    os.write(1, b"big " + b"x" * 3_000_000 + secret.encode() + b"\\n")
    os.write(2, f"stderr {secret}\\n".encode())
    sys.__stdout__.write(f"__stdout__ {secret}\\n")  # Python's buffer, flushed at the exit
    os.write(1, f"split {secret[:5]}".encode())
    os.write(1, f"{secret[5:]} no line end".encode())
    raise RuntimeError(f"dsn={secret}")
    """
)


def _run(script: str, secret: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", script, secret],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_every_way_to_the_descriptors_is_masked_in_order_and_nothing_is_lost_at_the_exit() -> None:
    secret = f"fd-s3cr3t-{uuid.uuid4().hex[:10]}"
    done = _run(EVERY_WAY, secret)
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stdout.split("\n")
    big = next(line for line in lines if line.startswith("big "))
    assert big == "big " + "x" * 3_000_000 + MASK  # more than the pipe holds, whole
    assert [line for line in lines if line != big] == [
        f"python {MASK}",
        f"os.write {MASK}",
        "python again",
        f"sh {MASK}",
        f"echo {MASK}",
        f"buffer {MASK}",
        f"__stdout__ {MASK}",
        f"split {MASK} no line endprintf {MASK}",  # libc's buffer comes out at the very end
        "",
    ] or lines
    assert done.stderr.startswith(f"stderr {MASK}\n")
    assert done.stderr.endswith(f"RuntimeError: dsn={MASK}\n")
    assert secret[:8] not in done.stdout + done.stderr


THREADS = PROLOGUE + textwrap.dedent(
    """
    # A slow masker (many secrets) and four threads writing more than the pipe holds, through
    # the Python-level stream and the descriptor at once: the writers wait for the reader, no
    # one waits for ever.
    mask_process(Masker([secret] + [f"other-secret-{i:04d}" for i in range(300)]))
    def write(n):
        for i in range(2000):
            if i % 2:
                print(f"t{n} python {i} {secret}")
            else:
                os.write(1, f"t{n} raw {i} {secret} {'y' * 500}\\n".encode())
    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    """
)


def test_a_slow_reader_holds_up_writers_but_never_deadlocks_and_loses_no_line() -> None:
    secret = f"slow-s3cr3t-{uuid.uuid4().hex[:10]}"
    done = _run(THREADS, secret)
    assert done.returncode == 0, done.stderr[-2000:]
    # Writers on other threads interleave where they like (a thread's Python-level line may
    # land inside another's raw one, as unmasked output interleaves at 8 KiB buffers): every
    # write is there once, masked.
    found = re.findall(rf"(t\d (?:python|raw) \d+) {re.escape(MASK)}", done.stdout)
    assert sorted(found) == sorted(
        f"t{n} {way} {i}"
        for n in range(4)
        for i in range(2000)
        for way in [("raw", "python")[i % 2]]
    )
    assert secret[:8] not in done.stdout


HARD_EXIT = PROLOGUE + textwrap.dedent(
    """
    os.write(1, f"raw {secret}\\n".encode())
    print("python", secret)  # after what the pipe holds: both out before it returns
    sys.stderr.write(f"last words {secret}\\n")
    os._exit(3)
    """
)


def test_os__exit_keeps_python_s_lines_and_the_raw_ones_written_before_them() -> None:
    """Python's own text is written straight to the log, after what waits in the pipe: an
    abrupt end loses only raw bytes written after the last Python-level line."""
    secret = f"exit-s3cr3t-{uuid.uuid4().hex[:10]}"
    done = _run(HARD_EXIT, secret)
    assert done.returncode == 3
    assert done.stdout == f"raw {MASK}\npython {MASK}\n"
    assert done.stderr == f"last words {MASK}\n"


def test_a_terminal_is_left_as_it_is() -> None:
    """`flowrun run` on a person's terminal: a pipe would take the terminal from every
    subprocess; the descriptor that is not a terminal (a redirected stdout) is piped."""
    before = "import os\nbefore = [os.fstat(fd).st_ino for fd in (1, 2)]\n"
    after = "print([os.fstat(fd).st_ino != b for fd, b in zip((1, 2), before)], os.isatty(2))"
    script = before + PROLOGUE + after
    main, tty = pty.openpty()
    try:
        with open(os.devnull, "w") as null:
            out = subprocess.run(
                [sys.executable, "-c", script, "s3cr3t-terminal"],
                stdout=subprocess.PIPE,
                stderr=tty,
                stdin=null,
                check=True,
                timeout=60,
            ).stdout
    finally:
        os.close(main)
        os.close(tty)
    assert out.decode() == "[True, False] True\n"  # stdout piped, the terminal not


LEAKY = """
import os, subprocess

def leak(secret):
    os.write(1, f"os.write {secret}\\n".encode())
    subprocess.run(["sh", "-c", "echo sh $S"], env={**os.environ, "S": secret}, check=True)
    return "done"
"""


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_flowrun_run_masks_what_a_task_writes_to_the_descriptors(
    tmp_path: Path, executor: str
) -> None:
    """In the command's process (local) and in its LocalCluster's worker processes (dask);
    its output goes to a pipe here, as in CI."""
    (tmp_path / "leaky.py").write_text(LEAKY)
    who = {"parameter": "who"}
    spec = {
        "flow": {
            "parameters": [{"name": "who"}],
            "tasks": [{"name": "leak", "fn": "leaky:leak", "args": [who]}],
        },
        "parametersFrom": [{"name": "who", "secretKeyRef": {"name": "s", "key": "k"}}],
    }
    body = {"apiVersion": "flowrun.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": "t"}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**body, "spec": spec}))
    secret = f"run-s3cr3t-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    command = ["run", "-q", "--executor", executor, "-p", f"who={secret}", str(path)]
    done = subprocess.run(
        [sys.executable, "-m", "flowrun.cli", *command],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"os.write {MASK}\n" in done.stdout
    assert f"sh {MASK}\n" in done.stdout
    assert secret[:8] not in done.stdout + done.stderr


def _leak(secret: str) -> bool:
    os.write(1, f"worker os.write {secret}\n".encode())
    subprocess.run(["sh", "-c", "echo worker sh $S"], env={**os.environ, "S": secret}, check=True)
    return stat.S_ISFIFO(os.fstat(1).st_mode)


def test_a_run_s_own_worker_processes_mask_their_descriptors_a_shared_cluster_s_do_not(
    capfd: pytest.CaptureFixture[str],
) -> None:
    own, shared = f"own-s3cr3t-{uuid.uuid4().hex[:8]}", f"shared-t0ken-{uuid.uuid4().hex[:8]}"
    for secret, is_shared in ((own, False), (shared, True)):
        with (
            distributed.LocalCluster(
                n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            distributed.Client(cluster, set_as_default=False) as client,
            masked_workers(client, Masker([secret]), shared=is_shared),
        ):
            piped = client.submit(_leak, secret, pure=False).result()
            assert piped is not is_shared
    out = capfd.readouterr().out
    assert f"worker os.write {MASK}\nworker sh {MASK}\n" in out, out
    assert own not in out
    # An External cluster's workers serve other runs: their descriptors are not the run's.
    assert f"worker os.write {shared}\nworker sh {shared}\n" in out, out
