"""`flowrun.utilities.debug`, as `prefect.utilities.debug`."""

from collections.abc import Iterator
from contextlib import contextmanager

from flowrun.engine.context import context


@contextmanager
def raise_on_exception() -> Iterator[None]:
    """Runs started in this block raise a task's exception (or signal) instead of
    recording it in a state: for debugging with the LocalExecutor.

    >>> from flowrun import Flow, task
    >>> with Flow("f") as flow:
    ...     _ = task(lambda: 1 / 0)()
    >>> with raise_on_exception():
    ...     flow.run()
    Traceback (most recent call last):
    ZeroDivisionError: division by zero
    """
    with context(raise_on_exception=True):
        yield


__all__ = ["raise_on_exception"]
