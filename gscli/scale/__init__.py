"""Scale: anti-aliased resolution change on periodic image grids (DESIGN §7); torch and numpy only.

Grid operators (``Z28x28>Z20x20``) as verified operator files: :func:`build_grid`,
:func:`check_grid`, :func:`summarize_grid` (docs/scale.md).
"""

from gscli.scale._grid import GRID_TOLERANCES, GridBuildResult, build_grid, build_grid_operator, check_grid, summarize_grid
from gscli.scale._resample import band_limit, resample, resample_matrix

__all__ = [
    "band_limit",
    "resample",
    "resample_matrix",
    "GRID_TOLERANCES",
    "GridBuildResult",
    "build_grid",
    "build_grid_operator",
    "check_grid",
    "summarize_grid",
]
