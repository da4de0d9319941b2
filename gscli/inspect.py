"""What an operator file holds, as one plain dictionary (the library behind ``gscli inspect``).

:func:`summarize` reads a file through the verified reader (a damaged file is refused before the
HDF5 library sees any of its bytes) and hands it to its family (:mod:`gscli.families`). Everything
in the result is JSON-serialisable. It shows what the file says; ``gscli eval`` re-checks it.
The finite-group summary (elements of H, band table, conditioning): :mod:`gscli.families.finite._summary`;
the grid summary: :mod:`gscli.families.grid._summary`; the continuous-group summary (bands by Casimir,
subgroup and escnn id, mode): :mod:`gscli.families.continuous._summary`.
"""

from __future__ import annotations

import os
from typing import Any

from gscli.errors import printable
from gscli.families import family_of
from gscli.families.finite._summary import (
    band_table,
    band_transfer,
    conditioning,
    fourier_response,
    subgroup_element_names,
)
from gscli.fileformat import OperatorData, read_operator

__all__ = ["summarize", "printable", "subgroup_element_names", "conditioning", "band_table", "band_transfer",
           "fourier_response"]


def summarize(source: str | os.PathLike | OperatorData) -> dict[str, Any]:
    """Summary of an operator file (a path, read and verified here, or data already read) as a JSON-serialisable dict.

    The keys are the family's: :func:`gscli.families.finite._summary.summarize` for finite groups
    (``operator``, ``group``, ``subgroup``, ``elements``, ``bands``, ``conditioning``, ``provenance``,
    ``checksum``, ``stored_checks``, ...), :func:`gscli.families.grid._summary.summarize_grid` for grids.
    """
    data = source if isinstance(source, OperatorData) else read_operator(source)
    return family_of(data).summarize(data)
