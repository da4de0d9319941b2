"""What the ideal resampling buys over plain subsampling on real images (``gscli eval``'s signal part for grids)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gscli.families._images import SignalResult, sample_images
from gscli.fileformat import OperatorData
from gscli.scale._resample import band_limit
from gscli.specs import GridOperatorSpec

__all__ = ["grid_signal_experiment", "GRID_NOTE"]

#: The note ``gscli eval`` prints under a grid operator's signal table.
GRID_NOTE = ("plain subsampling takes input floor(i N / M) for output i (every R-th sample when M | N); "
             "aliasing: share A/(A+B) of folded-in energy A = ||Y - X_B||^2 against the kept band's "
             "B = ||X_B||^2; undefined where the output has no energy")


def _images(spec: GridOperatorSpec) -> tuple[np.ndarray, str]:
    """Real images at the fine size, (count, 1, *fine): matplotlib's sample images (2-D), their rows
    (1-D), or volumes whose slices are an image shifted by one pixel per slice (3-D). Sizes above
    128 wrap the 128x128 images periodically."""
    fine = spec.fine.shape
    base, names = sample_images(min(max(fine), 128))
    reps = -(-max(fine) // base.shape[-1])
    images = np.tile(base, (1, reps, reps))
    if spec.dims == 1:
        x = images[:, :, : fine[0]].reshape(-1, fine[0])[:, None, :]
        return x, f"{x.shape[0]} rows of {len(names)} sample images"
    if spec.dims == 2:
        return images[:, None, : fine[0], : fine[1]], f"{len(names)} sample images"
    planes = images[:, : fine[1], : fine[2]]
    volumes = np.stack([np.roll(planes, s, axis=-1) for s in range(fine[0])], axis=1)
    return volumes[:, None], f"{len(names)} sample images stacked into volumes"


#: An energy at or below this multiple of the input's energy is zero up to rounding: a share of it is
#: undefined (``None``, JSON null), not rounding divided by rounding.
UNDEFINED_BELOW = 1e-20


def _aliasing(y: np.ndarray, x: np.ndarray, spec: GridOperatorSpec) -> float | None:
    """Share of aliasing in the output: A / (A + B) with A = ||Y − X_B||² the folded-in energy (whatever
    of the output is not the input's kept band) and B = ||X_B||² the band's own energy; per sample, mean.

    A share, so in [0, 1]: 0 without aliasing, 1 when the output is all alias. (||Y − X_B||² / ||Y||²
    is not one: Y and X_B are not orthogonal, and a fold that cancels the band made it 3.6 for rows
    of Z28 → Z1.) A sample with A + B at or below :data:`UNDEFINED_BELOW` times its input's energy
    (forward DFT, i.e. per pixel) has no output to share out and is left out; ``None`` when no sample
    has any (zero-mean images through an operator that keeps only the constant: Z_N → Z_1 or Z_2).
    """
    dims = tuple(range(2, 2 + spec.dims))
    big_x = np.fft.fftn(x, axes=dims, norm="forward")
    big_y = np.fft.fftn(y, axes=dims, norm="forward")
    target = np.zeros_like(big_y)
    index_in, index_out = [], []
    for n, m in spec.axes:
        h = band_limit(m)
        k = np.arange(-h, h + 1)
        index_in.append(k % n)
        index_out.append(k % m)
    target[(slice(None), slice(None), *np.ix_(*index_out))] = big_x[(slice(None), slice(None), *np.ix_(*index_in))]
    folded = np.sum(np.abs(big_y - target) ** 2, axis=dims).ravel()
    total = folded + np.sum(np.abs(target) ** 2, axis=dims).ravel()
    defined = total > UNDEFINED_BELOW * np.sum(np.abs(big_x) ** 2, axis=dims).ravel()
    if not defined.any():
        return None
    return float(np.mean(folded[defined] / total[defined]))


def _relative(error: float, reference: float) -> float | None:
    """error / reference, or ``None`` when the reference is zero (an all-zero signal: nothing to compare)."""
    return float(error / reference) if reference > 0 else None


def _nearest(n: int, m: int) -> np.ndarray:
    """Plain subsampling N → M: sample i takes input ⌊i N / M⌋ (every R-th sample when M | N)."""
    s = np.zeros((m, n))
    s[np.arange(m), (np.arange(m) * n) // m] = 1.0
    return s


def grid_signal_experiment(data: OperatorData) -> dict[str, Any]:
    """Plain subsampling vs the operator on real images: aliasing energy and reconstruction error.

    Plain subsampling takes input ⌊iN/M⌋ for output i (every R-th sample when M | N). Aliasing: the
    share of folded-in energy in the output, A/(A + B) with A = ||Y − X_B||² and B = ||X_B||², Y the
    output's and X_B the input's band coefficients (forward DFT); see :func:`_aliasing`.
    Reconstruction: ||U y − x||/||x|| over the whole fine grid, for y = plain or D x. A share whose
    denominator is zero up to rounding is ``None`` (undefined), never 0/0.
    """
    spec = data.spec
    assert isinstance(spec, GridOperatorSpec)
    x, what = _images(spec)
    downs = [np.asarray(data.arrays[f"axis{a}/downsample"], dtype=np.float64) for a in range(spec.dims)]
    ups = [np.asarray(data.arrays[f"axis{a}/upsample"], dtype=np.float64) for a in range(spec.dims)]
    plains = [_nearest(n, m) for n, m in spec.axes]

    def apply(matrices: list[np.ndarray], v: np.ndarray) -> np.ndarray:
        for axis, matrix in enumerate(matrices):
            v = np.moveaxis(np.tensordot(matrix, v, axes=([1], [2 + axis])), 0, 2 + axis)
        return v

    y_plain, y_op = apply(plains, x), apply(downs, x)
    lowpassed = apply(ups, y_op)
    norm = float(np.linalg.norm(x))
    return SignalResult(
        signal=f"real images ({what}; reconstruction on the whole grid)",
        count=int(x.shape[0]),
        out_of_band=_relative(float(np.sum((x - lowpassed) ** 2)), norm**2),
        reconstruction_plain=_relative(float(np.linalg.norm(apply(ups, y_plain) - x)), norm),
        reconstruction_operator=_relative(float(np.linalg.norm(lowpassed - x)), norm),
        aliasing_plain=_aliasing(y_plain, x, spec),
        aliasing_operator=_aliasing(y_op, x, spec),
    )
