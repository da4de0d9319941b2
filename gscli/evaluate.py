"""Re-check operator files from their arrays alone, and measure what anti-aliasing buys (the library behind ``gscli eval``).

:func:`evaluate` reads one file through the verified reader and hands it to its family
(:mod:`gscli.families`): the family re-derives every guarantee from the stored arrays (for finite
groups :func:`gscli.families.finite._checks.check_file`; for grids
:func:`gscli.families.grid._operator.check_grid`; for continuous groups
:func:`gscli.families.continuous._eval.check_file`) and, with ``signals``, compares plain subsampling
with the operator on real and random signals. No stored flag is trusted.
:func:`evaluate_store` does it for every file of a store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gscli.checks import Check, failed
from gscli.errors import FormatError, GscliError, StoreError
from gscli.families import family_of
from gscli.families._images import SignalResult, sample_images
from gscli.families.finite._checks import EVAL_TOLERANCES, check_file, runtime_operators
from gscli.families.finite._experiments import grid_transform, signal_experiments
from gscli.fileformat import read_operator
from gscli.store import check_store_folder, check_store_name, named_operator, resolve_store

__all__ = [
    "EVAL_TOLERANCES",
    "SignalResult",
    "EvalReport",
    "runtime_operators",
    "check_file",
    "signal_experiments",
    "sample_images",
    "grid_transform",
    "evaluate",
    "evaluate_store",
    "store_files",
]


@dataclass
class EvalReport:
    """What ``gscli eval`` found for one file."""

    path: Path
    operator: str | None
    checks: list[Check] = field(default_factory=list)
    signals: list[SignalResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: The file's kind, i.e. its family's (``"group"``, ``"grid"``: :mod:`gscli.families`).
    kind: str = "group"

    @property
    def passed(self) -> bool:
        return self.error is None and not failed(self.checks)

    @property
    def failures(self) -> list[str]:
        """One sentence per failed check (or the read error): name, measured error, tolerance."""
        if self.error is not None:
            return [self.error]
        return [f"check {c.name} failed: error {c.error:.3g} > tolerance {c.tolerance:.0e}"
                + (f" ({c.detail})" if c.detail else "") for c in failed(self.checks)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "operator": self.operator,
            "kind": self.kind,
            "passed": self.passed,
            "error": self.error,
            "checks": [c.as_dict() for c in self.checks],
            "signals": [s.as_dict() for s in self.signals],
            "notes": self.notes,
            "seconds": round(self.seconds, 4),
        }


def evaluate(path: str | os.PathLike, signals: bool = True, images: bool = True, seed: int = 0) -> EvalReport:
    """Re-check one operator file and, if ``signals``, measure plain vs anti-aliased downsampling.

    A file that cannot be read (missing, foreign, checksum mismatch) gives a failed report with
    ``error`` set, not an exception, so that a whole store can be evaluated. So does a file whose
    name is a store name (``D12-D6.h5``) but which holds another operator.
    """
    start = time.perf_counter()
    path = Path(path)
    try:
        data = read_operator(path, expect=named_operator(path))  # D12-D6.h5 must hold D12>D6, as in the store
        check_store_name(path, data)  # and escnn's Cayley graph (D12-D6_g1_13.h5: those generators), as build
    except FormatError as exc:
        return EvalReport(path, None, error=f"unreadable: {exc}", seconds=time.perf_counter() - start)
    family = family_of(data)
    report = EvalReport(path, str(data.spec), kind=family.kind)
    report.checks = family.check(data, seed)
    if signals:
        report.signals, extra, report.notes = family.experiments(data, seed, images)
        report.checks += extra
    report.seconds = time.perf_counter() - start
    return report


def store_files(store: str | os.PathLike | None = None) -> list[Path]:
    """Every operator file (``*.h5``, hidden files excluded) in the store folder, sorted by name."""
    folder = resolve_store(store)
    check_store_folder(folder)
    files = sorted(p for p in folder.glob("*.h5") if not p.name.startswith("."))
    if not files:
        raise StoreError(f"operator store {str(folder)!r} holds no .h5 files; build some with: gscli build --out {folder}")
    return files


def evaluate_store(
    paths: Iterable[str | os.PathLike],
    signals: bool = True,
    images: bool = True,
    seed: int = 0,
    progress: Callable[[Path, EvalReport | None], None] | None = None,
) -> list[EvalReport]:
    """:func:`evaluate` every file in ``paths`` (e.g. :func:`store_files`)."""
    reports = []
    for path in paths:
        path = Path(path)
        if progress is not None:
            progress(path, None)
        try:
            report = evaluate(path, signals, images, seed)
        except GscliError as exc:
            report = EvalReport(path, None, error=str(exc))
        reports.append(report)
        if progress is not None:
            progress(path, report)
    return reports
