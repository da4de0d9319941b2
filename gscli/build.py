"""Build operators into a store: the one pipeline every family's operators go through (the library behind ``gscli build``).

A family (:mod:`gscli.families`) computes and checks an operator; this module does the rest, the
same way for every family: the store folder (:func:`gscli.store.store_for_writing`), stale
temporaries, the file's write lock, the up-to-date check (an up-to-date file is kept unless
``force``; another file of that name is an error unless ``force``), refusing an operator whose
checks failed (nothing is written), and the atomic, verified write.

:func:`build` is the entry point for finite groups, where the subgroup may be chosen from a rate
(the selection rule: :mod:`gscli.families.finite._build`); :func:`build_spec` builds any family's
spec; :func:`build_catalog` a list of specs. Importing this module also lends the runtime its
builder (:mod:`gscli.hooks`), so ``GroupDownsample.from_catalog`` builds missing operators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gscli import hooks
from gscli._memory import available_memory
from gscli.catalog import read_catalog
from gscli.checks import failed
from gscli.errors import CheckError, StoreError
from gscli.families import Built, Family, family_of, parse_spec
from gscli.families.finite import FINITE
from gscli.families.finite._build import (
    BUILD_STEPS,
    SOLVER,
    BuildResult,
    BuiltOperator,
    Candidate,
    _check_numbers,
    _load,
    build_operator,
    candidates,
    choose,
    estimate_build_memory,
    is_up_to_date,
    select_subgroup,
    tie_key,
    validate_request,
)
from gscli.fileformat import remove_stale_temporaries, write_operator
from gscli.specs import GroupSpec, OperatorSpec, SubgroupSpec
from gscli.store import check_replaceable, operator_path, store_for_writing, write_lock

__all__ = [
    "Candidate",
    "BuiltOperator",
    "BuildResult",
    "candidates",
    "tie_key",
    "select_subgroup",
    "validate_request",
    "choose",
    "build_operator",
    "build",
    "build_spec",
    "build_catalog",
    "read_catalog",
    "is_up_to_date",
    "estimate_build_memory",
    "available_memory",
    "SOLVER",
    "BUILD_STEPS",
]


def _up_to_date(family: Family, path: Path, spec: Any, start: float, key: Any = None,
                selection: str | None = None) -> Any | None:
    """The family's ``up-to-date`` result when ``path`` is a current file of ``spec``, else ``None``."""
    data, _ = family.file_status(path, spec, key)
    if data is None:
        return None
    return family.result(spec, path, "up-to-date", time.perf_counter() - start, data=data, selection=selection)


def _write(family: Family, op: Built, folder: Path, force: bool, start: float,
           progress: Callable[[str], None] | None = None) -> Any:
    """Write ``op`` into ``folder`` (the caller holds the file's write lock)."""
    bad = failed(list(op.checks))
    if bad:
        raise CheckError(f"{op.spec}: check failed, nothing written: " + "; ".join(str(c) for c in bad))
    path = operator_path(op.spec, folder, op.suffix)
    check_replaceable(path)
    existed = path.exists()
    if existed and not force:
        data, why = family.file_status(path, op.spec, op.status_key)
        if data is not None:
            return family.result(op.spec, path, "up-to-date", time.perf_counter() - start, data=data,
                                 selection=op.selection or None)
        raise StoreError(f"{path} exists and is not an up-to-date {op.spec} operator ({why}); pass --force to replace it")
    if progress is not None:
        progress("writing")
    checksum = write_operator(path, op.datasets(), op.attributes())
    return family.result(op.spec, path, "rebuilt" if existed else "built", time.perf_counter() - start,
                         built=op, checksum=checksum)


def build_spec(spec: Any | str, out: Path | str = "operators", force: bool = False,
               progress: Callable[[str], None] | None = None) -> Any:
    """Build the operator ``spec`` of any family (``D12>D6``, ``Z28x28>Z20x20``) into ``out``; return what happened.

    The store rules of :func:`build`: an up-to-date file is kept unless ``force``, another file of
    that name is an error unless ``force``, writers take the file's lock, the file is written
    atomically and verified by reading it back, and a failed check writes nothing
    (:class:`~gscli.errors.CheckError`). The result is the family's (``as_dict()`` for ``--json``).
    """
    start = time.perf_counter()
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    family = family_of(spec)
    family.precheck(spec)
    with store_for_writing(out) as folder:
        remove_stale_temporaries(folder)
        path = operator_path(spec, folder)
        if not force:  # a current file needs no lock (renames are atomic) and no solver
            found = _up_to_date(family, path, spec, start)
            if found is not None:
                return found
        family.validate(spec)  # a request the family cannot meet takes no lock and writes nothing
        with write_lock(path):
            check_replaceable(path)
            if not force and path.exists():
                found = _up_to_date(family, path, spec, start)
                if found is not None:
                    return found
                _, why = family.file_status(path, spec)
                raise StoreError(f"{path} exists and is not an up-to-date {spec} operator ({why}); pass --force to replace it")
            return _write(family, family.build(spec, progress), folder, force, start, progress)


def build(
    group: GroupSpec | str,
    rate: int | None = None,
    subgroup: SubgroupSpec | str | None = None,
    out: Path | str = "operators",
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    generators: Any = None,
) -> BuildResult:
    """Build one operator of a finite group into the folder ``out`` (``<G>-<H>.h5``) and return what happened.

    ``progress``, if given, is called with each step of :data:`BUILD_STEPS` as it starts.
    ``generators`` (element names or indices, e.g. ``"r, r s"``) choose the Cayley graph; a choice
    other than escnn's is written to ``<G>-<H>_g<i>_<j>...h5`` (its element indices), so it never
    replaces or is mistaken for the default file, and is recorded in the file
    (``group_generators``, ``cayley_generators``).

    An up-to-date file is kept unless ``force``; a different file of the same name is an error
    unless ``force``. A failed check writes nothing and raises :class:`CheckError`. ``out`` must be
    an existing folder, except ``operators``, which is created (and removed again if nothing could
    be written into it): see :func:`gscli.store.store_for_writing`.

    Safe to run from many processes at once: writers of one file take its lock
    (:func:`gscli.store.write_lock`), so when the subgroup is named the first process builds and
    the others wait and return ``up-to-date``; files are replaced by an atomic rename, so readers
    never see a partial file. Temporary files left by killed builds are removed first.
    """
    start = time.perf_counter()
    group = GroupSpec.parse(group) if isinstance(group, str) else group
    subgroup = SubgroupSpec.parse(subgroup) if isinstance(subgroup, str) else subgroup
    _check_numbers(group, rate, subgroup)  # the same checks on the up-to-date path as on a fresh build
    if generators is None and subgroup is not None:  # the file name is known: the common pipeline
        return build_spec(OperatorSpec(group, subgroup), out, force, progress)
    with store_for_writing(out) as folder:
        remove_stale_temporaries(folder)
        validate_request(group, rate, subgroup)  # a request G cannot meet takes no lock and writes nothing
        if generators is not None:
            _load(group, generators)  # raises SubgroupError unless they generate G
        op = build_operator(group, rate, subgroup, progress, generators)
        with write_lock(operator_path(op.spec, folder, op.suffix)):
            return _write(FINITE, op, folder, force, start, progress)


def build_catalog(
    specs: Iterable[Any],
    out: Path | str = "operators",
    force: bool = False,
    progress: Callable[[Any, Any], None] | None = None,
) -> list[Any]:
    """Build every operator of a catalog (specs of any family) into ``out``; up-to-date files are kept unless ``force``.

    Each result is its family's (:class:`BuildResult` for finite groups, a grid result for grids).
    """
    results: list[Any] = []
    for spec in specs:
        if progress is not None:
            progress(spec, None)
        result = build_spec(spec, out=out, force=force)
        results.append(result)
        if progress is not None:
            progress(spec, result)
    return results


def _build_for_runtime(spec: OperatorSpec, folder: Path) -> tuple[Path, float, str]:
    """The builder :mod:`gscli.nn` uses for a missing operator (installed in :mod:`gscli.hooks`)."""
    result = build(spec.group, None, spec.subgroup, out=folder)
    return result.path, result.seconds, result.selection


hooks.install_builder(_build_for_runtime)
