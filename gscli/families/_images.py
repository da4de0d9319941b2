"""What every family's ``eval`` experiment reports, and the real images they run on.

:class:`SignalResult` is one row of ``gscli eval``'s signal table (plain subsampling against the
operator on one kind of signal); :func:`sample_images` gives the real images that ship with
matplotlib, so the experiments need no download.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

import numpy as np

from gscli._optional import need
from gscli.errors import DependencyError

__all__ = ["SignalResult", "sample_images", "IMAGE_SIZE"]

#: Side of the sample images the finite-group experiment lifts to G.
IMAGE_SIZE = 48


@dataclass(frozen=True)
class SignalResult:
    """Plain subsampling vs the operator on one kind of signal.

    ``reconstruction_*``: ||f - f_hat|| / ||f|| on the discarded elements G \\ H, f_hat = U S f
    (plain) or U D f (operator). ``aliasing_*``: ||y - S P f||^2 / ||y||^2 for the output y = S f
    (plain) or D f (operator): the share of the output's energy that is folded-in high frequency.
    ``equivariance_*``: max over the grid-exact h in H of ||y(h . x) - h . y(x)|| / ||y(x)|| under
    the joint spatial + fiber action (``None`` when no spatial action was measured).
    ``out_of_band``: ||(I - P) f||^2 / ||f||^2, how far the signals are from bandlimited.
    A share whose denominator is zero (up to rounding, for the aliasing of an output with no energy)
    is ``None``: undefined, JSON null.
    """

    signal: str
    count: int
    out_of_band: float | None
    reconstruction_plain: float | None
    reconstruction_operator: float | None
    aliasing_plain: float | None
    aliasing_operator: float | None
    equivariance_plain: float | None = None
    equivariance_operator: float | None = None
    transforms: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal, "count": self.count, "out_of_band": self.out_of_band,
            "reconstruction": {"plain": self.reconstruction_plain, "operator": self.reconstruction_operator},
            "aliasing": {"plain": self.aliasing_plain, "operator": self.aliasing_operator},
            "equivariance": {"plain": self.equivariance_plain, "operator": self.equivariance_operator,
                             "elements": list(self.transforms)},
        }


def sample_images(size: int = IMAGE_SIZE) -> tuple[np.ndarray, tuple[str, ...]]:
    """Real grayscale images that ship with matplotlib (no download), as (k, size, size) float64.

    Grace Hopper's portrait (``grace_hopper.jpg``), an MRI slice (``s1045.ima.gz``) and a terrain
    elevation map (``jacksboro_fault_dem.npz``), each block-averaged to about ``size`` pixels,
    center-cropped to ``size x size`` and normalised to zero mean and unit variance.

    Raises :class:`DependencyError` when matplotlib's sample data is missing.
    """
    cbook = need("matplotlib.cbook", "cli", "eval's real images")

    def load(name: str) -> np.ndarray:
        path = cbook.get_sample_data(name, asfileobj=False)
        if name.endswith(".jpg"):
            from matplotlib import image

            rgb = image.imread(path).astype(np.float64)
            return rgb[..., :3] @ np.array([0.299, 0.587, 0.114])
        if name.endswith(".ima.gz"):
            with gzip.open(path, "rb") as fh:
                return np.frombuffer(fh.read(), dtype="<u2").reshape(256, 256).astype(np.float64)
        with np.load(path) as archive:
            return np.asarray(archive["elevation"], dtype=np.float64)

    names = ("grace_hopper.jpg", "s1045.ima.gz", "jacksboro_fault_dem.npz")
    images = []
    for name in names:
        try:
            img = load(name)
        except (OSError, ValueError, KeyError) as exc:
            raise DependencyError(f"matplotlib's bundled sample image {name!r} cannot be read: {exc}") from None
        factor = max(1, min(img.shape) // size)
        h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
        img = img[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        img = img[top:top + size, left:left + size]
        images.append((img - img.mean()) / (img.std() or 1.0))
    return np.stack(images), names
