"""The default catalog, shipped inside the package: ``catalog.txt`` and one operator file per entry.

The files beside this module (``D12-D6.h5``, ...) are what ``gscli build`` writes for each entry of
``catalog.txt``; they make :meth:`gscli.nn.GroupDownsample.from_catalog` work after a plain
``pip install gscli``, without escnn and without a compiler. They are read-only: nothing in gscli
writes into this folder (``gscli build`` refuses it as ``--out``), and they are read through the one
verified reader, :func:`gscli.fileformat.read_operator`, like any other file. A damaged or missing
shipped file is refused with the command that reinstalls it.

A test builds every entry afresh and compares it with the shipped file, array for array and bit for
bit; after a change to the solver, ``python scripts/regenerate_catalog.py`` rewrites the files.

>>> [str(spec) for spec in shipped_specs()][:3]
['C8>C4', 'C16>C8', 'C16>C4']
>>> shipped_path("D12-D6").name, shipped_path("D4>C2")
('D12-D6.h5', None)
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from gscli.errors import SpecError, StoreError
from gscli.specs import GridOperatorSpec, OperatorSpec, parse_operator_spec

__all__ = ["FOLDER", "CATALOG", "PRODUCER_ATTRS", "read_catalog", "shipped_specs", "shipped_path", "is_shipped",
           "reinstall_command", "differences", "same_operator", "SAME_OPERATOR_TOL"]

#: The folder of the shipped catalog (inside the installed package).
FOLDER = Path(__file__).resolve().parent

#: The default catalog file: what ``gscli build`` builds without arguments.
CATALOG = FOLDER / "catalog.txt"


def read_catalog(path: Path | str) -> list[OperatorSpec | GridOperatorSpec]:
    """Parse a catalog file: one ``G>H`` (or grid ``Z<N>>Z<M>``) spec per line; ``#`` starts a comment; blank lines are ignored."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise StoreError(f"catalog {str(path)!r} not found; give operators explicitly (gscli build GROUP ...) or pass --catalog FILE") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"catalog {str(path)!r} cannot be read: {exc}") from None
    specs = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            specs.append(parse_operator_spec(text))
        except SpecError as exc:
            raise SpecError(f"{path}:{number}: {exc}") from None
    return specs


@lru_cache(maxsize=1)
def shipped_specs() -> tuple[OperatorSpec | GridOperatorSpec, ...]:
    """The operators of the shipped catalog, in the catalog's order."""
    return tuple(read_catalog(CATALOG))


def shipped_path(spec: OperatorSpec | GridOperatorSpec | str) -> Path | None:
    """The shipped file of ``spec`` (``"D12-D6"``, ``"D12>D6"``, ``"Z28x28>Z20x20"`` or a spec), or ``None`` if it is not shipped.

    The path is returned for every catalog entry, present or not, so that a file missing from a
    broken install is reported (with the reinstall command) instead of silently looked up elsewhere.
    """
    parsed = parse_operator_spec(spec) if isinstance(spec, str) else spec
    return FOLDER / f"{parsed.stem}.h5" if parsed in shipped_specs() else None


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a file of the shipped catalog folder (which gscli never writes)."""
    try:
        return Path(path).resolve().parent == FOLDER
    except (OSError, RuntimeError):
        return False


def reinstall_command() -> str:
    """The command that restores the shipped files of this gscli version."""
    from gscli import __version__

    return f"pip install --force-reinstall --no-deps gscli=={__version__}"


#: Attributes that record who wrote a file rather than what it holds; they may differ between two
#: builds of the same operator.
PRODUCER_ATTRS = frozenset({"gscli_version", "escnn_version", "numpy_version", "h5py_version"})


def differences(a, b) -> list[str]:
    """What differs between two :class:`~gscli.fileformat.OperatorData` apart from producer versions.

    Arrays are compared through the dataset checksum (every dataset's name, dtype, shape and bytes),
    attributes by value. An empty list means the same operator, bit for bit.
    """
    out = []
    if a.attrs.get("checksum") != b.attrs.get("checksum"):
        changed = sorted(k for k in set(a.arrays) | set(b.arrays)
                         if k not in a.arrays or k not in b.arrays or not _same_bits(a[k], b[k]))
        out.append(f"arrays {', '.join(changed) or '(checksum only)'}")
    keys = (set(a.attrs) | set(b.attrs)) - PRODUCER_ATTRS - {"checksum"}
    out += [f"attribute {k}: {a.attrs.get(k)!r} != {b.attrs.get(k)!r}" for k in sorted(keys) if a.attrs.get(k) != b.attrs.get(k)]
    return out


#: How far two files of one operator may differ (largest absolute entry of D, U, P) and still be the
#: same operator: LAPACK's summation order (thread count, CPU) changes the last bits only.
SAME_OPERATOR_TOL = 1e-10


def same_operator(a, b) -> bool:
    """Whether two :class:`~gscli.fileformat.OperatorData` hold the same operator, up to rounding.

    Same ``G>H``, the same elements of H, and D, U, P equal to :data:`SAME_OPERATOR_TOL` (the basis
    is not compared: it is unique only up to a rotation inside V).
    """
    import numpy as np

    if (a.attrs.get("group"), a.attrs.get("subgroup")) != (b.attrs.get("group"), b.attrs.get("subgroup")):
        return False
    if not _same_bits(a["subgroup_nodes"], b["subgroup_nodes"]):
        return False
    return all(a[k].shape == b[k].shape and float(np.abs(a[k] - b[k]).max(initial=0.0)) <= SAME_OPERATOR_TOL
               for k in ("downsample", "upsample", "antialias"))


def _same_bits(x, y) -> bool:
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    if x.dtype == object:  # strings
        return x.tolist() == y.tolist()
    return x.tobytes() == y.tobytes()
