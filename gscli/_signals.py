"""Ctrl-C (SIGINT) that cannot be lost, for commands that replace files.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be running
Python code. When that is a weakref callback or a ``__del__`` method, the exception is discarded
("Exception ignored in ...") and the program carries on as if nothing had happened. h5py runs such
callbacks (its object registry is a ``WeakValueDictionary``) all through writing and reading a
file, so a Ctrl-C during the write phase of a build was lost about one time in ten: the file was
replaced and the command exited 0.

:func:`watch_interrupts` installs a handler that still raises ``KeyboardInterrupt`` (so work stops
promptly) but also records the signal, and :func:`interrupt_requested` reads the record, so a
discarded interrupt is still seen. :func:`gscli.fileformat.atomic_write` asks just before its
rename, with SIGINT blocked (:func:`sigint_blocked`) so that none can slip in between the question
and the rename: an interrupt that arrives before the rename leaves the old file in place.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["watch_interrupts", "interrupt_requested", "sigint_blocked"]

_state = {"installed": False, "requested": False}


def _record_and_raise(signum: int, frame: Any) -> None:
    _state["requested"] = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def watch_interrupts() -> Iterator[None]:
    """Within the block, SIGINT raises ``KeyboardInterrupt`` and is also recorded.

    Nested blocks share the outermost block's record, which starts empty. Nothing is installed off
    the main thread (signals are delivered to the main thread only) or when SIGINT is ignored
    (``SIG_IGN``: the caller asked for Ctrl-C to have no effect).
    """
    if _state["installed"] or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN or previous is None:
        yield
        return
    _state["requested"] = False
    signal.signal(signal.SIGINT, _record_and_raise)
    _state["installed"] = True
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _state["installed"] = False


def interrupt_requested() -> bool:
    """True if SIGINT arrived inside the current :func:`watch_interrupts` block, even if the
    ``KeyboardInterrupt`` it raised was discarded."""
    return bool(_state["installed"] and _state["requested"])


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Hold SIGINT back (it stays pending, then arrives on exit) for a few statements that must not
    be separated, e.g. "was an interrupt requested?" and the rename that commits a file."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield  # pragma: no cover - Windows, or another thread (which never receives SIGINT)
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
