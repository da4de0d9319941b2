"""Pictures of operator files (matplotlib, Agg canvas: no display, no pyplot state; the library behind ``--plot``).

:func:`plot_operator` draws a file with its family's figure (:mod:`gscli.families`): for finite
groups the spectrum, the anti-aliasing response, the band-to-band transfer and heat maps of D, U
and P (:mod:`gscli.families.finite._plot`); for grids the kept band and the resampling matrices
(:mod:`gscli.families.grid._plot`); for continuous groups the bands kept per Casimir and D, U, P
(:mod:`gscli.families.continuous._plot`). :func:`plot_path` is the one check every ``--plot`` makes.
"""

from __future__ import annotations

import os
from pathlib import Path

from gscli.errors import StoreError
from gscli.families import family_of
from gscli.families.finite._plot import operator_figure
from gscli.fileformat import OperatorData, read_operator

__all__ = ["operator_figure", "plot_operator", "plot_path"]


def plot_path(out: str | os.PathLike) -> Path:
    """``out`` as a Path after the checks every ``--plot`` makes: a ``.png`` name in an existing folder.

    Raises :class:`StoreError` otherwise (nothing is drawn first).
    """
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise StoreError(f"plot file {str(out)!r} must end in .png")
    if not out.parent.is_dir():
        raise StoreError(f"cannot write plot {str(out)!r}: folder {str(out.parent)!r} does not exist")
    return out


def plot_operator(source: str | os.PathLike | OperatorData, out: str | os.PathLike, dpi: int = 100) -> Path:
    """Write the family's figure of an operator file to a PNG at ``out``; return the path.

    Raises :class:`StoreError` when the folder of ``out`` does not exist or ``out`` does not end in
    ``.png``.
    """
    out = plot_path(out)
    data = source if isinstance(source, OperatorData) else read_operator(source)
    fig = family_of(data).figure(data)
    try:
        fig.savefig(out, dpi=dpi, format="png")
    except OSError as exc:
        raise StoreError(f"cannot write plot {str(out)!r}: {exc}") from None
    return out
