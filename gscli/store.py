"""The operator store: the folder operator files live in, how names map to files, and write locks.

The store is ``$GSCLI_STORE`` if set (an empty value counts as unset), else ``operators/`` (relative
to the working directory); the command line's ``--out`` overrides both, and an empty ``--out`` is
refused. Writers create ``operators/`` when it is missing (and remove it again if the write fails
while it is still empty); any other store folder must exist, so that a mistyped path is reported
instead of silently becoming a new, empty store. Readers refuse a missing store. File names come from parsed specs (``D12-D6.h5``): a spec's
stem holds only ASCII letters, digits, one ``-`` (and ``_`` in ``SO3_L3-O``), and :func:`operator_path` checks that, so a name
can never leave the store folder (no ``..``, no separators, no absolute paths).

Writers of a store serialize on an advisory lock (:func:`write_lock`, ``fcntl.flock`` on the store
folder, so no lock file is left behind): the first process builds and writes, the others wait and
then find the file up to date. Readers take no lock: files are replaced by an atomic rename, so a
reader always opens either the old or the new complete file.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gscli.errors import FormatError, GscliError, StoreError
from gscli.specs import ContinuousOperatorSpec, GridOperatorSpec, OperatorSpec, parse_operator_spec

__all__ = [
    "STORE_ENV",
    "DEFAULT_STORE",
    "LOCK_TIMEOUT",
    "default_store",
    "resolve_store",
    "why_not_writable",
    "check_store_folder",
    "check_writable",
    "check_replaceable",
    "store_for_writing",
    "operator_path",
    "named_operator",
    "check_store_name",
    "lock_path",
    "write_lock",
]

STORE_ENV = "GSCLI_STORE"

#: The store folder used when none is named; the only one gscli creates by itself.
DEFAULT_STORE = "operators"

#: Seconds a writer waits for another writer of the same file before giving up.
LOCK_TIMEOUT = 3600.0

_SUFFIX_RE = r"g(?:[0-9]+(?:_[0-9]+)*|h[0-9a-f]{16})"  # gscli.cayley.generator_suffix: indices, or a digest
_STEM_RE = re.compile(rf"[A-Za-z0-9]+-[A-Za-z0-9]+(_{_SUFFIX_RE})?|[A-Za-z0-9]+_L[0-9]+-[A-Za-z0-9]+")


def default_store() -> Path:
    """``$GSCLI_STORE`` if set and non-empty, else ``operators``."""
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


def resolve_store(store: str | os.PathLike | None = None) -> Path:
    """The store folder: ``store`` if given, else :func:`default_store`. An empty ``store`` is refused."""
    if store is None:
        return default_store()
    if os.fspath(store) == "":
        raise StoreError(f"the store folder is an empty path; name a folder, or leave it out for ${STORE_ENV} or {DEFAULT_STORE}/")
    return Path(store)


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def why_not_writable(folder: Path | str) -> str | None:
    """``None`` if a file can be created in the existing folder ``folder``, else the reason.

    The test creates (and removes) a file, which also catches read-only file systems and special
    folders such as ``/proc``, where permission bits (ignored for root) say nothing.
    """
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".gscli-probe-"):
            return None
    except OSError as exc:
        return _reason(exc)


def check_store_folder(folder: Path | str, option: str = "--out") -> None:
    """Raise :class:`~gscli.errors.StoreError` unless ``folder`` exists and is a folder.

    ``option``: the command-line option that names the store, for the message (``eval-model``: ``--store``).
    """
    folder = Path(folder)
    if not folder.exists():
        raise StoreError(f"store folder {str(folder)!r} does not exist; create it or choose another ({option}, ${STORE_ENV})")
    if not folder.is_dir():
        raise StoreError(f"store {str(folder)!r} is not a folder; choose a folder ({option}, ${STORE_ENV})")


def check_writable(folder: Path | str, option: str = "--out") -> None:
    """Raise :class:`~gscli.errors.StoreError` unless ``folder`` is an existing folder files can be created in."""
    from gscli.catalog import FOLDER as SHIPPED

    check_store_folder(folder, option)
    if Path(folder).resolve() == SHIPPED:
        raise StoreError(f"output folder {str(folder)!r} holds the catalog shipped with gscli, which is read-only; "
                         f"pass another {option}")
    reason = why_not_writable(folder)
    if reason is not None:
        raise StoreError(f"cannot create files in the store folder {str(folder)!r} ({reason}); "
                         f"choose another ({option}, ${STORE_ENV})")


@contextlib.contextmanager
def store_for_writing(store: str | os.PathLike | None = None) -> Iterator[Path]:
    """Resolve the store (:func:`resolve_store`), check files can be written into it, and yield it.

    ``operators/`` is created when missing, and removed again if the ``with`` block fails while the
    folder is still empty; any other missing folder raises :class:`~gscli.errors.StoreError`.
    """
    folder = resolve_store(store)
    created = False
    if not os.path.lexists(folder) and folder == Path(DEFAULT_STORE):
        try:
            folder.mkdir()
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {str(folder)!r} ({_reason(exc)}); "
                             f"choose another (--out, ${STORE_ENV})") from None
        created = True
    try:
        check_writable(folder)
        yield folder
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise


def check_replaceable(path: Path | str) -> None:
    """Raise :class:`~gscli.errors.StoreError` if something other than a file (a folder) is at ``path``."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_file():
        raise StoreError(f"{str(path)!r} is in the way: it is not a file (a folder?); remove or rename it, "
                         "or choose another --out (--force replaces files only)")


def operator_path(
    spec: OperatorSpec | GridOperatorSpec | ContinuousOperatorSpec | str, store: Path | str | None = None, suffix: str = ""
) -> Path:
    """Path of the file for ``spec`` (``"D12>D6"``, ``"D12-D6"``, a grid operator ``"Z28>Z20"``, or a parsed spec) in ``store``.

    ``suffix`` (from :func:`gscli.cayley.generator_suffix`, e.g. ``g1_13``) names operators built with
    Cayley-graph generators other than escnn's: ``D12-D6_g1_13.h5``. The plain name always holds
    escnn's generators, so two choices never share a file.

    Raises :class:`~gscli.errors.SpecError` for a spec string that does not parse, and
    :class:`~gscli.errors.StoreError` if the name would not be a plain file name inside ``store``.
    """
    parsed = parse_operator_spec(spec) if isinstance(spec, str) else spec
    folder = resolve_store(store)
    stem = f"{parsed.stem}_{suffix}" if suffix else parsed.stem
    if not _STEM_RE.fullmatch(stem) or not stem.isascii():
        raise StoreError(f"operator {parsed!r} gives the file name {stem!r}, which is not a plain name inside the store")
    path = folder / f"{stem}.h5"
    if path.parent != folder or path.name != f"{stem}.h5":
        raise StoreError(f"operator file {str(path)!r} would leave the store {str(folder)!r}")
    return path


def named_operator(path: Path | str) -> OperatorSpec | GridOperatorSpec | ContinuousOperatorSpec | None:
    """The operator a file's store name promises (``D12-D6.h5`` -> D12>D6), or None for other names.

    >>> str(named_operator("operators/D12-D6.h5")), named_operator("my-copy.h5"), named_operator("d12-d6.h5")
    ('D12>D6', None, None)
    >>> named_operator("operators/SO3_L3-O.h5")
    ContinuousOperatorSpec('SO3_L3>O')
    """
    path = Path(path)
    if path.suffix != ".h5":
        return None
    try:
        spec = parse_operator_spec(path.stem)
    except GscliError:
        return None
    return spec if spec.stem == path.stem else None


def check_store_name(path: Path | str, data: Any) -> None:
    """The rule ``gscli build`` applies to a store file, for every reader (``eval``, ``inspect``): a
    file named like a store file holds what the name promises. ``<G>-<H>.h5`` holds G>H built on
    escnn's Cayley graph; ``<G>-<H>_g<...>.h5`` holds G>H built on the generators that suffix names
    (:func:`gscli.cayley.generator_suffix`). Other names promise nothing.

    ``data`` is the file's :class:`~gscli.fileformat.OperatorData`. Raises
    :class:`~gscli.errors.FormatError` naming what the file holds and the name it would have.
    """
    path = Path(path)
    stem, sep, suffix = path.stem.partition("_")
    if path.suffix != ".h5" or (sep and not re.fullmatch(_SUFFIX_RE, suffix)):
        return
    try:
        spec = parse_operator_spec(stem)
    except GscliError:
        return
    if spec.stem != stem:
        return
    if str(data.spec) != str(spec):
        raise FormatError(f"{path}: holds {data.spec}, but its store name promises {spec}")
    if data.kind == "grid":
        if sep:
            raise FormatError(f"{path}: a grid operator takes no Cayley-graph generators; its store name is {spec.stem}.h5")
        return
    from gscli.cayley import DEFAULT, generator_suffix

    recorded = data.attrs.get("cayley_generators", DEFAULT)
    actual = "" if recorded == DEFAULT else generator_suffix(int(g) for g in data["group_generators"])
    if actual != suffix:
        built = "escnn's Cayley-graph generators" if not actual else f"Cayley-graph generators {recorded}"
        raise FormatError(f"{path}: was built with {built}; its store name is {spec.stem}{'_' + actual if actual else ''}.h5 "
                          "(gscli build refuses it under this name too)")


def lock_path(path: Path) -> Path:
    """What writers of ``path`` lock: the store folder itself (no lock file is left behind)."""
    return Path(path).parent


@contextlib.contextmanager
def write_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive write lock of ``path`` for the duration of the ``with`` block.

    The lock is an ``fcntl.flock`` on the store folder (:func:`lock_path`), so writers of a store take
    turns and nothing is left behind; the operating system releases it when its holder exits, even
    when killed, so a crashed writer never blocks the next. Where ``fcntl`` does not exist
    (Windows), no lock is taken: writes are still atomic, concurrent builders just duplicate work.

    Raises :class:`~gscli.errors.StoreError` if the lock cannot be created or is held longer than
    ``timeout`` seconds.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    target = lock_path(path)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StoreError(f"cannot lock the store folder {str(target)!r}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"another process has been writing {str(path)!r} for over {timeout:g} s "
                        f"(it holds {str(target)!r}); wait for it or stop it"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
