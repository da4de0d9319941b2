#!/usr/bin/env python3
"""Regenerate the operator files shipped in gscli/catalog/ from gscli/catalog/catalog.txt.

Run it after any change that alters what ``gscli build`` writes (solver numerics, attributes,
format), in an environment with escnn (``bash scripts/setup.sh`` makes one)::

    .venv/bin/python scripts/regenerate_catalog.py           # rewrite the files that changed
    .venv/bin/python scripts/regenerate_catalog.py --check   # only report; exit 1 if any is out of date

Every entry is built afresh with this checkout's code, exactly as ``gscli build`` does, into a
temporary folder, and compared with the shipped file by :func:`gscli.catalog.differences`: every
discrete result (subgroup nodes, tables, band dimensions and kept counts, names, selection, the
attributes that are not floats) exactly, every float to DESIGN §4's limits. BLAS and LAPACK pick their
kernels per CPU and change the last bits of the floats, so the check holds on any machine
(``OPENBLAS_CORETYPE=Haswell``, ``Sandybridge``, ...) and a file differing by rounding alone keeps its
bytes. A shipped file is replaced (atomically) only when it differs beyond rounding; shipped files
that the catalog no longer lists are removed. ``tests/test_catalog.py`` fails until this has been run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's gscli, whatever is installed
# One BLAS thread, so that a rebuild on one machine writes the same bits whatever its core count (the
# comparison with the shipped files allows for rounding anyway: another CPU's kernels change the bits).
os.environ.update(SINGLE_THREADED := {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})

from gscli.build import build_catalog  # noqa: E402
from gscli.catalog import CATALOG, FOLDER, differences, read_catalog  # noqa: E402
from gscli.errors import FormatError, GscliError  # noqa: E402
from gscli.fileformat import read_operator  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a shipped file is out of date")
    parser.add_argument("--out", type=Path, help="build into this (empty) folder and keep it, instead of a temporary one")
    args = parser.parse_args(argv)
    if FOLDER != ROOT / "gscli" / "catalog":
        print(f"error: gscli was imported from {FOLDER.parent}, not from this checkout", file=sys.stderr)
        return 2
    specs = read_catalog(CATALOG)
    changed = 0
    with (contextlib.nullcontext(str(args.out)) if args.out else tempfile.TemporaryDirectory(prefix="gscli-catalog-")) as tmp:
        try:
            build_catalog(specs, out=tmp, force=True)
        except GscliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for spec in specs:
            new, shipped = Path(tmp) / f"{spec.stem}.h5", FOLDER / f"{spec.stem}.h5"
            try:
                why = differences(read_operator(shipped), read_operator(new)) if shipped.exists() else ["new file"]
            except FormatError as exc:
                why = [str(exc)]
            if not why:
                print(f"unchanged  {spec}")
                continue
            changed += 1
            print(f"{'stale' if args.check else 'rewritten'}  {spec}: {'; '.join(why)[:300]}")
            if not args.check:
                partial = shipped.with_name(f".{shipped.name}.new")
                shutil.copyfile(new, partial)
                os.replace(partial, shipped)
    listed = {f"{spec.stem}.h5" for spec in specs}
    for extra in sorted(p for p in FOLDER.glob("*.h5") if p.name not in listed):
        changed += 1
        print(f"{'not listed' if args.check else 'removed'}  {extra.name}")
        if not args.check:
            extra.unlink()
    print(f"{len(specs)} catalog entries, {changed} {'out of date' if args.check else 'changed'}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
