"""Atomic file replacement: write to a temporary beside the target, fsync, rename; clean up what killed writers left.

A reader never sees a partial file: the target is either the old file or the complete new one.
Temporaries are named ``.<name>.tmp-<host>-<pid>-<random>``, so a later writer can tell whether the
process that left one is gone (:func:`remove_stale_temporaries`). Ctrl-C during a write is deferred
and then honoured (:mod:`gscli._signals`). Used by :mod:`gscli.fileformat` for operator files.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from gscli._signals import interrupt_requested, interrupts_deferred

__all__ = ["FOREIGN_TEMPORARY_AGE", "temporary_path", "remove_stale_temporaries", "atomic_write"]


#: A temporary file from another machine (shared store) is removed only when older than this.
FOREIGN_TEMPORARY_AGE = 24 * 3600.0

_TMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{8}$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    """True if a process ``pid`` runs on this machine (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def temporary_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.tmp-<host>-<pid>-<random>``."""
    return path.with_name(f".{path.name}.tmp-{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by writers that no longer run; return them.

    A temporary is stale when its writer (host and process id are in its name) ran on this machine
    and is gone, or when it comes from another machine and is older than
    :data:`FOREIGN_TEMPORARY_AGE`. Files that do not look like gscli temporaries are never touched.
    """
    removed = []
    host = _host_tag()
    now = time.time()
    for entry in Path(folder).glob(".*.tmp-*"):
        m = _TMP_RE.match(entry.name)
        if m is None:
            continue
        try:
            if m.group("host") == host:
                stale = not _pid_alive(int(m.group("pid")))
            else:
                stale = now - entry.lstat().st_mtime > FOREIGN_TEMPORARY_AGE
            if stale:
                entry.unlink()
                removed.append(entry)
        except FileNotFoundError:
            pass
    return removed


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)``, then atomically rename the temporary file onto ``path``.

    The temporary file lives in the same folder (so the rename is atomic) and is removed if
    ``write`` fails or is interrupted: ``path`` is either the old file or the complete new one.
    If the process is killed (``SIGKILL``), the temporary stays behind until
    :func:`remove_stale_temporaries` (every build calls it) finds its writer gone.

    Ctrl-C is never lost (:mod:`gscli._signals`): during the write it is deferred, then the
    temporary is removed, the old file kept, and ``KeyboardInterrupt`` raised. One that arrives
    after the rename raises ``KeyboardInterrupt`` too; the file is then the complete new one.
    """
    path = Path(path)
    tmp = temporary_path(path)
    with interrupts_deferred():  # h5py would drop a KeyboardInterrupt raised inside it (see gscli._signals)
        try:
            if interrupt_requested():  # an earlier Ctrl-C of this command that something dropped
                raise KeyboardInterrupt
            write(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            if interrupt_requested():
                raise KeyboardInterrupt
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)  # make the rename itself durable
        interrupted = interrupt_requested()
    if interrupted:
        raise KeyboardInterrupt
