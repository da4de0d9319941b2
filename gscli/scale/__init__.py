"""Scale: anti-aliased resolution change on periodic image grids and exactly scale-equivariant layers.

DESIGN §7: ideal downscaling D_{N→M} keeps the odd band |k| <= ⌊(M−1)/2⌋ of the forward-normalised
DFT. :func:`resample` applies it (and its upscaling) to tensors, :func:`resample_matrix` gives it as a
dense matrix; :class:`SpectralConv2d`, :class:`ScaleEqActivation` and :class:`ScaleInvariantPool`
satisfy f(D x) = D f(x) exactly. Grid operators (``Z28x28>Z20x20``) as verified operator files:
:func:`build_grid`, :func:`check_grid`, :func:`summarize_grid` (docs/scale.md). torch and numpy only
(no escnn).
"""

_LAZY = {  # torch-backed names load on first use, so reading a grid file does not import torch
    "GRID_TOLERANCES": "_grid", "GridBuildResult": "_grid", "build_grid": "_grid",
    "build_grid_operator": "_grid", "check_grid": "_grid", "summarize_grid": "_grid",
    "estimate_grid_memory": "_grid", "grid_matrix": "_grid",
    "ScaleEqActivation": "_layers", "ScaleInvariantPool": "_layers", "SpectralConv1d": "_layers",
    "SpectralConv2d": "_layers", "SpectralConv3d": "_layers",
    "band_limit": "_resample", "resample": "_resample", "resample_matrix": "_resample",
    "resize_spectrum": "_resample",
}

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
    "estimate_grid_memory",
    "grid_matrix",
    "resample",
    "resample_matrix",
    "resize_spectrum",
    "summarize_grid",
]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"gscli.scale.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'gscli.scale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
