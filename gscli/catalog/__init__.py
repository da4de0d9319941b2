"""The default catalog, shipped inside the package: ``catalog.txt`` and one operator file per entry.

The files beside this module (``D12-D6.h5``, ...) are what ``gscli build`` writes for each entry of
``catalog.txt``; they make :meth:`gscli.nn.GroupDownsample.from_catalog` work after a plain
``pip install gscli``, without escnn and without a compiler. They are read-only: nothing in gscli
writes into this folder (``gscli build`` refuses it as ``--out``), and they are read through the one
verified reader, :func:`gscli.fileformat.read_operator`, like any other file. A damaged or missing
shipped file is refused with the command that reinstalls it.

A test builds every entry afresh and compares it with the shipped file (:func:`differences`: every
discrete result exactly, every float to DESIGN §4's limits, so that it holds on any CPU); after a
change to the solver, ``python scripts/regenerate_catalog.py`` rewrites the files.

>>> [str(spec) for spec in shipped_specs()][:3]
['C8>C4', 'C16>C8', 'C16>C4']
>>> shipped_path("D12-D6").name, shipped_path("D4>C2")
('D12-D6.h5', None)
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

from gscli.errors import SpecError, StoreError
from gscli.specs import GridOperatorSpec, OperatorSpec, parse_operator_spec

__all__ = ["FOLDER", "CATALOG", "PRODUCER_ATTRS", "read_catalog", "shipped_specs", "shipped_path", "is_shipped",
           "reinstall_command", "differences", "FLOAT_TOLERANCES", "same_operator", "SAME_OPERATOR_TOL"]

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


#: How far a float of one build of an operator may stray from another build's and still be rounding
#: (another CPU's BLAS kernels, another thread count): the limits of DESIGN §4, to which a correct build
#: is held, as the largest absolute difference of entries; ``name -> (tolerance, scaled)`` where a
#: scaled tolerance is multiplied by max(1, largest absolute entry). P and D: the projector and
#: equivariance limit; U: the reconstruction limit (S U = I is what fixes U); B B^T (the basis is only
#: unique up to a rotation inside V): the projector limit; the band frequencies, the 3x3 matrices, grid
#: arrays and any other float: 1e-12, scaled. Rounding moves these entries by a few units in the last
#: place (about 1e-15); a change of 1e-9 anywhere is far outside every one of them.
FLOAT_TOLERANCES: dict[str, tuple[float, bool]] = {
    "antialias": (1e-12, False),
    "downsample": (1e-12, False),
    "upsample": (1e-10, True),
    "basis": (1e-12, False),
    "aliasing_cost": (1e-12, True),
}
_DEFAULT_FLOAT_TOLERANCE = (1e-12, True)
#: A measured number inside a check's ``detail`` text (the text is compared with these masked).
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|\b(?:nan|inf)\b")


def differences(a, b) -> list[str]:
    """What differs between two :class:`~gscli.fileformat.OperatorData` beyond rounding (empty: the same operator).

    Whether a fresh build matches a shipped file (``scripts/regenerate_catalog.py``, the catalog
    test) on any CPU: BLAS and LAPACK pick their kernels per CPU and so change the last bits of every
    float, never a discrete result. So:

    * everything discrete must be equal exactly: the datasets present, every dtype and shape, every
      integer and string dataset (subgroup nodes in H's order, Cayley tables, generators, element
      names, a grid's kept frequencies), the band table's dimensions and kept counts, and every
      attribute that is not a float (spec, orders, identities, escnn ids, selection, solver, ...);
    * every float within :data:`FLOAT_TOLERANCES` (DESIGN §4's limits): D, U, P entry by entry; the
      basis B through B B^T, since B itself is any orthonormal basis of V (a rotated B is the same
      operator); the band frequencies and every other float dataset or attribute scaled by its size;
    * the ``checks`` record (what the build measured) by check: name, tolerance and verdict exactly,
      the measured errors within the check's own tolerance, the detail text with its numbers masked.

    Producer versions (:data:`PRODUCER_ATTRS`) and ``checksum`` are not compared: a digest over floats
    changes with their last bits (each file's own checksum is verified when it is read).

    Returns one line per difference, naming the dataset or attribute and, for floats, the largest
    difference against its tolerance.
    """
    import numpy as np

    out = []
    for name in sorted(set(a.arrays) | set(b.arrays)):
        if name not in a.arrays or name not in b.arrays:
            out.append(f"dataset {name}: only in the {'first' if name in a.arrays else 'second'} file")
            continue
        x, y = a[name], b[name]
        if x.dtype != y.dtype or x.shape != y.shape:
            why = f"{x.dtype} {x.shape} != {y.dtype} {y.shape}"
        elif x.dtype.names:  # a table (the bands): integer fields exactly, float fields within tolerance
            why = "; ".join(f"{field}: {w}" for field in x.dtype.names
                            if (w := _difference(x[field], y[field], _DEFAULT_FLOAT_TOLERANCE)))
        elif name == "basis":  # B is any orthonormal basis of V; B B^T is the operator's
            why = _difference(x @ x.T, y @ y.T, FLOAT_TOLERANCES["basis"])
            why = why and f"B B^T: {why}"
        else:
            why = _difference(x, y, FLOAT_TOLERANCES.get(name.rsplit("/", 1)[-1], _DEFAULT_FLOAT_TOLERANCE))
        if why:
            out.append(f"dataset {name}: {why}")
    for key in sorted((set(a.attrs) | set(b.attrs)) - PRODUCER_ATTRS - {"checksum"}):
        u, v = a.attrs.get(key), b.attrs.get(key)
        if key == "checks" and isinstance(u, str) and isinstance(v, str):
            out += [f"attribute checks: {why}" for why in _check_record_differences(u, v)]
        elif isinstance(u, float) and isinstance(v, float):
            why = _difference(np.float64(u), np.float64(v), FLOAT_TOLERANCES.get(key, _DEFAULT_FLOAT_TOLERANCE))
            if why:
                out.append(f"attribute {key}: {u!r} != {v!r}, {why}")
        elif type(u) is not type(v) or u != v:
            out.append(f"attribute {key}: {u!r} != {v!r}")
    return out


def _difference(x, y, tolerance: tuple[float, bool]) -> str:
    """``""`` if ``x`` and ``y`` (one dtype and shape) agree (exactly; floats within ``tolerance``), else why not."""
    import numpy as np

    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind != "f":
        differ = sum(p != q for p, q in zip(x.ravel().tolist(), y.ravel().tolist()))
        return f"{differ} of {x.size} entries differ" if differ else ""
    limit, scaled = tolerance
    if scaled:
        limit *= max(1.0, float(np.abs(y[np.isfinite(y)]).max(initial=0.0)))
    finite = np.isfinite(x) & np.isfinite(y)
    if not np.array_equal(x[~finite], y[~finite], equal_nan=True):
        return "non-finite entries differ"
    gap = float(np.abs(x[finite] - y[finite]).max(initial=0.0))
    return f"largest difference {gap:.3g} > {limit:.3g}" if gap > limit else ""


def _check_record_differences(first: str, second: str) -> list[str]:
    """Differences of two ``checks`` attributes (JSON lists of :meth:`gscli.checks.Check.as_dict`)."""
    records = []
    for text in (first, second):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
            return [] if first == second else ["not a list of checks; the texts differ"]
        records.append(value)
    if [c.get("name") for c in records[0]] != [c.get("name") for c in records[1]]:
        return [f"checks {[c.get('name') for c in records[0]]} != {[c.get('name') for c in records[1]]}"]
    out = []
    for c, d in zip(*records):
        name = c.get("name")
        for key in sorted(set(c) | set(d)):
            u, v = c.get(key), d.get(key)
            if key == "error" and _is_number(u) and _is_number(v) and _is_number(c.get("tolerance")):
                if not abs(u - v) <= c["tolerance"]:  # NaN fails
                    out.append(f"{name}: measured {u!r} != {v!r} (more than its tolerance {c['tolerance']!r} apart)")
            elif key == "detail" and isinstance(u, str) and isinstance(v, str):
                if _NUMBER.sub("#", u) != _NUMBER.sub("#", v):
                    out.append(f"{name}: detail {u!r} != {v!r}")
            elif type(u) is not type(v) or u != v:
                out.append(f"{name}: {key} {u!r} != {v!r}")
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
