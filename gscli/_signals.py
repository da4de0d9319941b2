"""Ctrl-C (SIGINT) that cannot be lost, for commands that replace files.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be running
Python code. When that is a weakref callback or a ``__del__`` method, the exception is printed as
"Exception ignored in ..." and dropped, and the program carries on. h5py runs such callbacks (its
object registry is a ``WeakValueDictionary``) all through writing and reading a file, so a Ctrl-C
during the write phase of ``gscli build --force`` was lost about one time in ten: the file was
replaced and the command exited 0.

:func:`watch_interrupts` (around every command) installs a handler that raises
``KeyboardInterrupt`` as usual but also records the signal, so :func:`interrupt_requested` still
sees an interrupt whose exception was dropped. :func:`interrupts_deferred` (around writing a file)
only records it: no exception is raised inside h5py at all, and the writer asks
:func:`interrupt_requested` before its rename, so the old file stays in place.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["watch_interrupts", "interrupts_deferred", "interrupt_requested"]

_state = {"installed": False, "requested": False, "deferred": 0}


def _record(signum: int, frame: Any) -> None:
    _state["requested"] = True
    if not _state["deferred"]:
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
    signal.signal(signal.SIGINT, _record)
    _state["installed"] = True
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _state["installed"] = False


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Within the block, SIGINT is only recorded, never raised; the block checks
    :func:`interrupt_requested` where stopping is safe. Use it for short, bounded work."""
    if threading.current_thread() is not threading.main_thread():  # SIGINT is the main thread's
        yield
        return
    with watch_interrupts():
        _state["deferred"] += 1
        try:
            yield
        finally:
            _state["deferred"] -= 1


def interrupt_requested() -> bool:
    """True if SIGINT arrived inside the current :func:`watch_interrupts` block, even if the
    ``KeyboardInterrupt`` it raised was dropped, or it was deferred."""
    return bool(_state["installed"] and _state["requested"])
