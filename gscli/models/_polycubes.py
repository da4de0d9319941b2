"""A 3-D data set that needs no download: the eight tetracubes, voxelized at random exact cube rotations.

Classes (one per free tetracube, four unit cubes joined face to face)::

    0 I (straight)  1 O (square)  2 T  3 L  4 S (skew)  5 branch (tripod)  6 screw-a  7 screw-b

The two screws are mirror images of each other and no rotation maps one onto the other, so a
model invariant under O (rotations) can tell them apart while one invariant under O_h (rotations
and the inversion) cannot: an O_h model has to keep some orientation information (group
downsampling O_h -> O or further) to reach full accuracy. Every other piece is its own mirror image.

Each sample: pick the piece, rotate its unit cubes by one of the 24 cube rotations (signed 3x3
permutation matrices of determinant 1, uniformly at random), scale every unit cube to
``scale^3`` voxels, place it at a uniformly random offset inside the ``grid_size^3`` grid, set its
voxels to 1 and the rest to 0, then add Gaussian noise of standard deviation ``noise``. Classes are
balanced (``per_class`` samples each) and shuffled; everything is drawn from
``numpy.random.default_rng(seed)``, so a seed gives the same arrays on every machine.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from gscli.models._config import ConfigError
from gscli.models._data import Digits

__all__ = ["CLASSES", "PIECES", "cube_rotations", "load_polycubes", "polycubes"]

PIECES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "I": ((0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)),
    "O": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)),
    "T": ((0, 0, 0), (1, 0, 0), (2, 0, 0), (1, 1, 0)),
    "L": ((0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 1, 0)),
    "S": ((0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)),
    "branch": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "screw-a": ((0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, 1)),
    "screw-b": ((0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, -1)),
}
CLASSES = tuple(PIECES)


def cube_rotations(proper: bool = True) -> np.ndarray:
    """The 24 rotations (``proper``) or all 48 symmetries of the cube, as int64 (k, 3, 3) signed permutations."""
    found = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=np.int64)
            m[np.arange(3), perm] = signs
            if not proper or round(np.linalg.det(m)) == 1:
                found.append(m)
    return np.stack(found)


def polycubes(per_class: int, grid_size: int = 9, scale: int = 2, noise: float = 0.0,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` samples of each tetracube (see the module docstring).

    Returns
    -------
    voxels : ndarray of float32, shape (8 * per_class, 1, grid_size, grid_size, grid_size)
    labels : ndarray of int64, shape (8 * per_class,), indices into :data:`CLASSES`
    """
    if not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"per_class must be a positive integer, got {per_class!r}")
    if scale < 1 or 4 * scale > grid_size:
        raise ConfigError(f"a tetracube spans up to 4 cubes of {scale} voxels: grid_size must be >= {4 * scale}, "
                          f"got {grid_size}")
    if noise < 0:
        raise ConfigError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    rotations = cube_rotations()
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    labels = labels[rng.permutation(len(labels))]
    voxels = np.zeros((len(labels), 1, grid_size, grid_size, grid_size), dtype=np.float32)
    block = np.stack(np.meshgrid(*[np.arange(scale)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for i, label in enumerate(labels):
        cubes = np.asarray(PIECES[CLASSES[label]], dtype=np.int64) @ rotations[rng.integers(len(rotations))].T
        cubes -= cubes.min(axis=0)
        extent = (cubes.max(axis=0) + 1) * scale
        offset = np.array([rng.integers(grid_size - e + 1) for e in extent])
        points = (cubes[:, None, :] * scale + block[None, :, :]).reshape(-1, 3) + offset
        voxels[i, 0, points[:, 0], points[:, 1], points[:, 2]] = 1.0
    if noise > 0:
        voxels += rng.normal(0.0, noise, size=voxels.shape).astype(np.float32)
    return voxels, labels


def load_polycubes(grid_size: int, per_class: int = 100, test_size: int = 200, seed: int = 0,
                   noise: float = 0.1) -> tuple[Digits, Digits]:
    """Train and test splits of :func:`polycubes` (``scale = (grid_size - 1) // 4``, at least 1)."""
    if not 0 < test_size < 8 * per_class:
        raise ConfigError(f"test_size must lie in 1..{8 * per_class - 1}, got {test_size}")
    voxels, labels = polycubes(per_class, grid_size, max(1, (grid_size - 1) // 4), noise, seed)
    x, y = torch.from_numpy(voxels), torch.from_numpy(labels)
    return Digits(x[test_size:], y[test_size:]), Digits(x[:test_size], y[:test_size])
