"""A run's process masked down to its file descriptors 1 and 2, past `sys.stdout`/`sys.stderr`.

`masked_streams` masks what Python code writes through `sys.stdout` and `sys.stderr`. C code,
`os.write`, subprocesses (`subprocess.run(["echo", secret])`), `sys.stdout.buffer` and
`sys.__stdout__` write to the descriptors themselves, and that reaches the container log (and a
crashed runner's log tail, its FlowRun's status message). In a process that is one run's (the
runner Pod, the worker processes of its own Dask cluster, `flowrun run` and its LocalCluster's
workers) `mask_process` puts a pipe over descriptors 1 and 2: a thread reads it and writes it to
where the descriptor went before, through the run's `Masker`, a line at a time (a
`MaskedStream`: held until a line end, `HOLD_MAX` characters, or the end).

Python's own text does not take the pipe: the `MaskedStream` of `sys.stdout`/`sys.stderr` has
masked it, and writes it straight to the original descriptor, after what waits in the pipe (the
order kept). So a crash's traceback and last log lines are out before the process can die, as
without the pipe, and nothing is masked twice.

At the interpreter's exit, libc's and Python's buffers are flushed into the pipe, the thread
reads it empty, writes a last line without line end, and is joined. An abrupt end (`os._exit`,
a signal, the OOM killer) loses what was written to the descriptors themselves that the thread
had not forwarded yet: the pipe's content (the last moments' bytes) and an unended last line;
libc's unflushed buffers are lost then with or without the pipe. What writes after the exit
(a daemon thread, a subprocess left running) goes into the pipe and is lost, never unmasked.

A descriptor that is a terminal is left as it is: a person's screen, not a log, and a pipe
would take the terminal away from every subprocess and C library (colours, line buffering,
window size). Never in a process that serves many runs (the operator, an External cluster's
workers): their descriptors are not the run's to take (`worker_masking`).
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import ctypes
import faulthandler
import fcntl
import functools
import os
import select
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from flowrun.runs.masked_streams import MaskedStream, mask_std_streams
from flowrun.runs.secrets import Masker

PIPE_SIZE = 1 << 20  # asked for: Linux's limit for an unprivileged process (pipe-max-size)
CHUNK = 1 << 16  # bytes read at once


def mask_process(masker: Masker, *, fds: Sequence[int] = (1, 2)) -> Callable[[], None]:
    """Mask this whole process's output with `masker`: `sys.stdout`/`sys.stderr` and the
    descriptors `fds` (those that are not terminals); the function that takes it off again.
    Only in a process that is one run's; a no-op without secrets."""
    if not masker:
        return lambda: None
    unstream = mask_std_streams(masker)
    forwarders = [_Forwarder(fd, masker) for fd in fds if _pipeable(fd)]
    for forwarder in forwarders:
        forwarder.start()
    at_exit = functools.partial(_finish, forwarders, restore=False)
    atexit.register(at_exit)

    def restore() -> None:
        atexit.unregister(at_exit)
        _finish(forwarders, restore=True)
        unstream()

    return restore


def _pipeable(fd: int) -> bool:
    try:
        return not os.isatty(fd)
    except OSError:  # not open: nothing goes there
        return False


def _finish(forwarders: list[_Forwarder], *, restore: bool) -> None:
    """Everything written so far out through the masker; with `restore`, the descriptors
    as they were (unmasked) from then on, else (the exit) still piped."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):  # closed by the program: nothing held
                stream.flush()
    _flush_c_stdio()
    for forwarder in forwarders:
        forwarder.stop(restore=restore)


def _flush_c_stdio() -> None:
    """libc's stdout buffer (C code's printf, full-buffered on a pipe), else flushed by the C
    exit only: after this thread has stopped reading."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to load (not a libc platform)
        return


class _Descriptor:
    """A text sink that writes each text at once to a descriptor: no buffer to lose."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> int:
        # The log's reader gone (EPIPE): nowhere to write, with the pipe or without; the
        # pipe is still read, so that its writers never block on a full pipe.
        with contextlib.suppress(OSError):
            _write_all(self.fd, text.encode("utf-8", "surrogateescape"))
        return len(text)

    def flush(self) -> None:
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Forwarder:
    """Descriptor `fd` over a pipe that a thread reads, masks and writes to the original."""

    def __init__(self, fd: int, masker: Masker) -> None:
        self.fd = fd
        self.original = os.dup(fd)  # not inherited: subprocesses get the pipe only
        self._read, write = os.pipe()
        with contextlib.suppress(OSError):  # over the limit: the default size (64 KiB)
            fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._capacity = fcntl.fcntl(write, fcntl.F_GETPIPE_SZ)
        os.set_blocking(self._read, False)
        self._waiting = select.poll()
        self._waiting.register(self._read, select.POLLIN)
        self._wake_read, self._wake = os.pipe()
        self._flush_streams(fd)
        os.dup2(write, fd)  # inheritable: subprocesses write into the pipe
        os.close(write)
        self._out = MaskedStream(_Descriptor(self.original))  # type: ignore[arg-type]
        self._out.set_maskers([masker])
        self._decode = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode
        # Reentrant: a signal handler that prints runs on a thread that may be inside it.
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._stopping = False
        self._thread = threading.Thread(target=self._forward, name=f"mask-fd-{fd}", daemon=True)
        self._retargeted: list[tuple[MaskedStream, TextIO]] = []

    def start(self) -> None:
        self._thread.start()
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, MaskedStream) and _fileno(stream.wrapped) == self.fd:
                old = stream.retarget(_Direct(stream.wrapped, self))  # type: ignore[arg-type]
                self._retargeted.append((stream, old))
        if self.fd == 2 and faulthandler.is_enabled():  # a crash's last words: no values
            faulthandler.enable(self.original, all_threads=True)

    def write_after_pipe(self, data: bytes) -> None:
        """`data` (masked already) to the original descriptor, after what the pipe holds."""
        if os.getpid() != self._pid:  # a forked child: the parent's thread reads the pipe
            _write_all(self.original, data)
            return
        with self._lock:
            if self._waiting.poll(0):  # cheaper than a read that finds nothing (most writes)
                self._pump()
            _write_all(self.original, data)

    def stop(self, *, restore: bool) -> None:
        if os.getpid() != self._pid or self._stopping:
            return
        if restore:
            for stream, old in self._retargeted:
                stream.retarget(old)
            if self.fd == 2 and faulthandler.is_enabled():
                faulthandler.enable(self.fd, all_threads=True)
            os.dup2(self.original, self.fd)
        self._stopping = True
        os.write(self._wake, b".")
        self._thread.join()
        if restore:
            for fd in (self._read, self._wake_read, self._wake, self.original):
                os.close(fd)

    def _forward(self) -> None:
        poller = select.poll()
        poller.register(self._read, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        while not self._stopping:
            ready = dict(poller.poll())
            if ready.get(self._read) and not self._pump():
                poller.unregister(self._read)  # no writer left: only the wake-up to wait for
        self._pump(to_end=True)
        with self._lock:  # a character cut short by the end: as the decoder can spell it
            self._out.write(self._decode(b"", True))
            self._out.flush()

    def _pump(self, *, to_end: bool = False) -> bool:
        """Forward what the pipe holds: what was written before the call (at most its
        capacity: a writer that keeps on does not hold up the caller), or until it is empty;
        False when it has ended (no writer left)."""
        left, chunk = self._capacity, b"."
        with self._lock:
            while chunk and (to_end or left > 0):
                try:
                    chunk = os.read(self._read, CHUNK)
                except BlockingIOError:
                    break
                self._out.write(self._decode(chunk))
                left -= len(chunk)
            if self._stopping:  # no thread reads any more: a line's start is not held
                self._out.flush()
        return bool(chunk)

    @staticmethod
    def _flush_streams(fd: int) -> None:
        """Python's buffered text for `fd` out before the pipe takes its place."""
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None and _fileno(stream) == fd:
                stream.flush()


class _Direct:
    """Where a `MaskedStream` of a piped descriptor writes: its text, masked already, straight
    to the original descriptor; everything else (`fileno`, `buffer`: into the pipe) is the
    stream's it wrapped."""

    def __init__(self, stream: TextIO, forwarder: _Forwarder) -> None:
        self.wrapped = stream
        self._forwarder = forwarder

    def write(self, text: str) -> int:
        errors = self.wrapped.errors or "strict"
        self._forwarder.write_after_pipe(text.encode(self.wrapped.encoding, errors))
        return len(text)

    def flush(self) -> None:
        self.wrapped.flush()  # what went to `buffer`: into the pipe, then out
        self._forwarder.write_after_pipe(b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _fileno(stream: Any) -> int | None:
    try:
        fd: int = stream.fileno()
    except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO: no descriptor
        return None
    return fd
