"""Scale: anti-aliased resolution change on periodic image grids and exactly scale-equivariant layers.

DESIGN §7: ideal downscaling D_{N→M} keeps the odd band |k| <= ⌊(M−1)/2⌋ of the forward-normalised
DFT. :func:`resample` applies it (and its upscaling) to tensors, :func:`resample_matrix` gives it as a
dense matrix; :class:`SpectralConv2d`, :class:`ScaleEqActivation` and :class:`ScaleInvariantPool`
satisfy f(D x) = D f(x) exactly. Grid operators (``Z28x28>Z20x20``) as verified operator files:
:func:`build_grid`, :func:`check_grid`, :func:`summarize_grid` (docs/scale.md). torch and numpy only
(no escnn).
"""

from gscli.scale._grid import (
    GRID_TOLERANCES,
    GridBuildResult,
    build_grid,
    build_grid_operator,
    check_grid,
    summarize_grid,
)
from gscli.scale._layers import (
    ScaleEqActivation,
    ScaleInvariantPool,
    SpectralConv1d,
    SpectralConv2d,
    SpectralConv3d,
)
from gscli.scale._resample import band_limit, resample, resample_matrix, resize_spectrum

__all__ = [
    "GRID_TOLERANCES",
    "GridBuildResult",
    "ScaleEqActivation",
    "ScaleInvariantPool",
    "SpectralConv1d",
    "SpectralConv2d",
    "SpectralConv3d",
    "band_limit",
    "build_grid",
    "build_grid_operator",
    "check_grid",
    "resample",
    "resample_matrix",
    "resize_spectrum",
    "summarize_grid",
]
