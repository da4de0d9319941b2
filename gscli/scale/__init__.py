"""Scale: anti-aliased resolution change on periodic image grids and exactly scale-equivariant layers.

DESIGN §7: ideal downscaling D_{N→M} keeps the odd band |k| <= ⌊(M−1)/2⌋ of the forward-normalised
DFT. :func:`resample` applies it (and its upscaling) to tensors, :func:`resample_matrix` gives it as a
dense matrix; :class:`SpectralConv2d`, :class:`ScaleEqActivation` and :class:`ScaleInvariantPool`
satisfy f(D x) = D f(x) exactly. torch and numpy only (no escnn); this is the runtime, which never
imports the build machinery (docs/architecture.md). Grid operators (``Z28x28>Z20x20``) as verified
operator files are an operator family: :mod:`gscli.families.grid` (built with
:func:`gscli.build.build_spec`, docs/scale.md).
"""

_LAZY = {  # torch-backed names load on first use, so reading a grid file does not import torch
    "ScaleEqActivation": "_layers", "ScaleInvariantPool": "_layers", "SpectralConv1d": "_layers",
    "SpectralConv2d": "_layers", "SpectralConv3d": "_layers",
    "band_limit": "_resample", "resample": "_resample", "resample_matrix": "_resample",
    "resize_spectrum": "_resample",
}

__all__ = [
    "ScaleEqActivation",
    "ScaleInvariantPool",
    "SpectralConv1d",
    "SpectralConv2d",
    "SpectralConv3d",
    "band_limit",
    "resample",
    "resample_matrix",
    "resize_spectrum",
]


#: Names that lived here before grid-operator files became an operator family, and where they are now.
_MOVED = {
    "GRID_TOLERANCES": "gscli.families.grid.GRID_TOLERANCES", "GridBuildResult": "gscli.families.grid.GridBuildResult",
    "build_grid": "gscli.build.build_spec", "build_grid_operator": "gscli.families.grid.build_grid_operator",
    "check_grid": "gscli.families.grid.check_grid", "summarize_grid": "gscli.families.grid.summarize_grid",
    "estimate_grid_memory": "gscli.families.grid.estimate_grid_memory", "grid_matrix": "gscli.families.grid.grid_matrix",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"gscli.scale.{_LAZY[name]}"), name)
    if name in _MOVED:  # the runtime does not import the families: say where the name went
        raise AttributeError(f"gscli.scale.{name} moved to {_MOVED[name]} (grid operator files are an operator family)")
    raise AttributeError(f"module 'gscli.scale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
