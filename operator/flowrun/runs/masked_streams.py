"""A process's own output masked: `sys.stdout` and `sys.stderr` pass the run's `Masker`.

A flow that runs in this process (the runner Pod, `flowrun run`) may print or log a secret
parameter, or raise an exception that spells it (a connection string): that text lands in the
container log, and a crashed runner's log tail in the FlowRun's status message. Installed before
the flow's code is imported, `mask_std_streams` routes every Python-level write through the one
`Masker`: `print`, logging handlers (those created before are re-pointed), `warnings`, the
uncaught-exception traceback and the interpreter's final flush.

Text is held until a line ends (a secret written in two pieces is masked whole), or until a
flush or `HOLD_MAX` characters; a secret spelled across a flush is masked as `Masker` masks
fragments (runs of 8 or more characters). Dask worker processes mask theirs the same way
(`worker_masking`). What never passes `sys.stdout` or `sys.stderr` (bytes written to
`sys.stdout.buffer`, `sys.__stdout__` or the file descriptors: C code, subprocesses) is masked
by `masked_fds` in a process that is one run's, which then writes this text straight to the
original descriptor: docs/install.md, Secrets.
"""

from __future__ import annotations

import functools
import logging
import operator
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from flowrun.runs.secrets import Masker

HOLD_MAX = 65536  # characters held without a line end before they are written anyway


class MaskedStream:
    """A text stream that masks what it writes to `stream`, whole lines at a time, with every
    masker added (a shared Dask worker serves several runs); every other attribute (fileno,
    isatty, encoding, buffer) is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream
        self.maskers: list[Masker] = []
        self._masker = Masker()  # all of them in one
        self._held = ""
        # Tasks on threads print while the run service logs; reentrant, because a signal handler
        # that prints runs on the thread that may be inside `write` just then.
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        with self._lock:
            self._held += text
            if "\n" not in text and len(self._held) < HOLD_MAX:
                return len(text)  # the line goes on (looked for in the new text only)
            cut = self._held.rfind("\n") + 1 or len(self._held)
            out, self._held = self._held[:cut], self._held[cut:]
            self.wrapped.write(self._mask(out))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._held:
                self.wrapped.write(self._mask(self._held))
                self._held = ""
            self.wrapped.flush()

    def _mask(self, text: str) -> str:
        return self._masker.text(text)

    def retarget(self, stream: TextIO) -> TextIO:
        """Write to `stream` from now on (held text first to the old one); the old stream."""
        with self._lock:
            self.flush()
            old, self.wrapped = self.wrapped, stream
        return old

    def set_maskers(self, maskers: list[Masker]) -> None:
        with self._lock:
            self.maskers = maskers
            self._masker = functools.reduce(operator.or_, maskers, Masker())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def mask_std_streams(masker: Masker) -> Callable[[], None]:
    """Mask `sys.stdout` and `sys.stderr` with `masker` from now on (besides any masker there
    already); the function that takes it off again, and the streams' wrapping with the last one.
    A no-op without secrets."""
    if not masker:
        return lambda: None
    wrapped: dict[str, TextIO] = {}
    masked: list[MaskedStream] = []
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:  # no console (pythonw): nothing to mask
            continue
        if not isinstance(stream, MaskedStream):
            wrapped[name], stream = stream, MaskedStream(stream)
            setattr(sys, name, stream)
        stream.set_maskers([*stream.maskers, masker])
        masked.append(stream)
    repointed = _repoint_handlers({id(s): getattr(sys, n) for n, s in wrapped.items()})

    def restore() -> None:
        for stream in masked:
            stream.flush()
            stream.set_maskers([m for m in stream.maskers if m is not masker])
        for name, original in wrapped.items():
            now = getattr(sys, name)
            if isinstance(now, MaskedStream) and not now.maskers:
                setattr(sys, name, original)
        if not any(stream.maskers for stream in masked):
            for handler, old in repointed:
                handler.setStream(old)

    return restore


def _repoint_handlers(
    streams: dict[int, MaskedStream],
) -> list[tuple[logging.StreamHandler[Any], Any]]:
    """Logging handlers made before (e.g. at an import) write to the stream they were given:
    those writing to stdout or stderr write through the masked one instead."""
    handlers = [h for lg in _loggers() for h in lg.handlers]
    changed: list[tuple[logging.StreamHandler[Any], Any]] = []
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in streams:
            changed.append((handler, handler.setStream(streams[id(handler.stream)])))
    return changed


def _loggers() -> list[logging.Logger]:
    found = [logging.getLogger()]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            found.append(logger)
    return found
