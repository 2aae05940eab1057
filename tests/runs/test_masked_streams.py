"""A process's own output through the run's masker (`flowrun.runs.masked_streams`), shown in a
real interpreter: its final flush and its uncaught-exception traceback happen after any code."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import textwrap
import uuid

import distributed
import pytest

from flowrun.runs.masked_streams import MaskedStream, mask_std_streams
from flowrun.runs.secrets import MASK, Masker
from flowrun.runs.worker_masking import masked_workers

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    early = logging.StreamHandler(sys.stderr)  # made before, as a library's at its import
    logging.getLogger("early").addHandler(early)
    from flowrun.runs.masked_streams import mask_std_streams
    from flowrun.runs.secrets import Masker
    secret = sys.argv[1]
    mask_std_streams(Masker([secret]))
    logging.getLogger("early").error("early handler: %s", secret)
    sys.stdout.write("split: " + secret[:4])
    sys.stdout.write(secret[4:] + "\\n")
    print("no line end at exit:", secret, end="")
    raise RuntimeError(f"dsn={secret!r}")
    """
)


def test_a_process_masks_split_writes_early_handlers_and_its_last_traceback() -> None:
    secret = f'pa"ss\\w{uuid.uuid4().hex[:10]}'
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, secret],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == f"split: {MASK}\nno line end at exit: {MASK}"
    assert f"early handler: {MASK}\n" in done.stderr
    assert done.stderr.endswith(f"RuntimeError: dsn='{MASK}'\n"), done.stderr
    both = done.stdout + done.stderr
    assert Masker([secret]).text(both) == both  # no spelling or slice of it left


def test_without_secrets_nothing_is_wrapped_and_restore_puts_everything_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = sys.stdout, sys.stderr
    mask_std_streams(Masker())()
    assert (sys.stdout, sys.stderr) == before
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger("masked-streams-test").addHandler(handler)
    try:
        restore = mask_std_streams(Masker(["hunter2-secret"]))
        assert isinstance(sys.stdout, MaskedStream)
        assert handler.stream is sys.stderr
        print("pw hunter2-secret", end="")
        restore()
        assert (sys.stdout, sys.stderr) == before
        assert handler.stream is before[1]
    finally:
        logging.getLogger("masked-streams-test").removeHandler(handler)
    assert capsys.readouterr().out == f"pw {MASK}"  # restore flushed the held text, masked


def _say(*words: str) -> None:
    print(*words, flush=True)


def test_workers_of_a_shared_cluster_mask_each_run_s_secrets_while_it_lasts(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A worker process outlives the runs it serves (an External cluster): it masks the secrets
    of every run registered with it, and each run's only until its end."""
    first, second = "alpha-s3cr3t-1234", "omega-t0ken-5678"  # no slice in common
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        say = functools.partial(client.submit, _say, pure=False)
        with masked_workers(client, Masker([first]), shared=True):
            with masked_workers(client, Masker([second]), shared=True):
                say("both:", first, second).result()
            say("after the second run:", first, second).result()
        say("after both:", first, second).result()
        assert not isinstance(sys.stdout, MaskedStream)  # the worker's process, not this one
    out = capfd.readouterr().out
    assert f"both: {MASK} {MASK}\n" in out, out
    assert f"after the second run: {MASK} {second}\n" in out, out
    assert f"after both: {first} {second}\n" in out, out


def test_a_worker_in_the_client_s_own_process_is_left_alone() -> None:
    """The runner's LocalCluster of threads (the runner masks its whole process itself), or the
    operator's: neither its Python streams nor its descriptors are taken over."""
    before = os.fstat(1)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
        masked_workers(client, Masker(["in-process-s3cr3t"]), shared=False),
    ):
        assert client.submit(lambda: type(sys.stdout).__name__, pure=False).result() != (
            MaskedStream.__name__
        )
        assert os.fstat(1) == before


SIGNALLED = textwrap.dedent(
    """
    import signal, sys
    from flowrun.runs.masked_streams import mask_std_streams
    from flowrun.runs.secrets import Masker
    mask_std_streams(Masker([sys.argv[1]]))
    ticks = 0
    def tick(signum, frame):
        global ticks
        ticks += 1
        print("tick", sys.argv[1])
    signal.signal(signal.SIGALRM, tick)
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    while ticks < 200:
        print("line", "x" * 60)
    signal.setitimer(signal.ITIMER_REAL, 0)
    print("done")
    """
)


def test_a_signal_handler_that_prints_in_the_middle_of_a_write_does_not_deadlock() -> None:
    """The handler runs on the thread that is inside `write` (holding the stream's lock) just
    then: with a plain lock the process hangs (or dies of a RecursionError) at once."""
    secret = f"sig-s3cr3t-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-c", SIGNALLED, secret],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.endswith("done\n")
    assert f"tick {MASK}\n" in done.stdout
    assert secret not in done.stdout
