"""A 3-D data set that needs no download: the eight tetracubes, voxelized at random exact cube rotations.

Classes (one per free tetracube, four unit cubes joined face to face)::

    0 I (straight)  1 O (square)  2 T  3 L  4 S (skew)  5 branch (tripod)  6 screw-a  7 screw-b

The two screws are mirror images of each other and no rotation maps one onto the other, so a
model invariant under O (rotations) can tell them apart while one invariant under O_h (rotations
and the inversion) cannot: an O_h model has to keep some orientation information (group
downsampling O_h -> O or further) to reach full accuracy. Every other piece is its own mirror image.
With ``merge_mirror=True`` the screws are one class, ``screw`` (:data:`MERGED_CLASSES`, 7 classes),
each sample of it either chirality with probability 1/2: the task an O_h-invariant model can solve.

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

from gscli.errors import printable
from gscli.models._config import ConfigError, ModelConfig
from gscli.models._data import Digits

__all__ = ["CLASSES", "MERGED_CLASSES", "PIECES", "classes_for", "cube_rotations", "load_polycubes",
           "load_voxel_data", "polycubes"]

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
#: The classes with the mirror pair merged (``merge_mirror=True``): class 6 is either screw.
MERGED_CLASSES = CLASSES[:6] + ("screw",)


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
              seed: int = 0, merge_mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` samples of each tetracube class (see the module docstring).

    Returns
    -------
    voxels : ndarray of float32, shape (n * per_class, 1, grid_size, grid_size, grid_size)
    labels : ndarray of int64, shape (n * per_class,), indices into :data:`CLASSES` (n = 8), or into
        :data:`MERGED_CLASSES` (n = 7) with ``merge_mirror``
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
    names = MERGED_CLASSES if merge_mirror else CLASSES
    labels = np.repeat(np.arange(len(names), dtype=np.int64), per_class)
    labels = labels[rng.permutation(len(labels))]
    voxels = np.zeros((len(labels), 1, grid_size, grid_size, grid_size), dtype=np.float32)
    block = np.stack(np.meshgrid(*[np.arange(scale)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for i, label in enumerate(labels):
        piece = names[label] if names[label] != "screw" else ("screw-a", "screw-b")[rng.integers(2)]
        cubes = np.asarray(PIECES[piece], dtype=np.int64) @ rotations[rng.integers(len(rotations))].T
        cubes -= cubes.min(axis=0)
        extent = (cubes.max(axis=0) + 1) * scale
        offset = np.array([rng.integers(grid_size - e + 1) for e in extent])
        points = (cubes[:, None, :] * scale + block[None, :, :]).reshape(-1, 3) + offset
        voxels[i, 0, points[:, 0], points[:, 1], points[:, 2]] = 1.0
    if noise > 0:
        voxels += rng.normal(0.0, noise, size=voxels.shape).astype(np.float32)
    return voxels, labels


def load_polycubes(grid_size: int, per_class: int = 100, test_size: int = 200, seed: int = 0,
                   noise: float = 0.1, merge_mirror: bool = False) -> tuple[Digits, Digits]:
    """Train and test splits of :func:`polycubes` (``scale = (grid_size - 1) // 4``, at least 1)."""
    total = (len(MERGED_CLASSES) if merge_mirror else len(CLASSES)) * per_class
    if not 0 < test_size < total:
        raise ConfigError(f"test_size must lie in 1..{total - 1}, got {test_size}")
    voxels, labels = polycubes(per_class, grid_size, max(1, (grid_size - 1) // 4), noise, seed, merge_mirror)
    x, y = torch.from_numpy(voxels), torch.from_numpy(labels)
    return Digits(x[test_size:], y[test_size:]), Digits(x[:test_size], y[:test_size])


def classes_for(config: ModelConfig) -> tuple[str, ...]:
    """The tetracube classes a voxel configuration is trained on: the mirror pair merged for O_h.

    An O_h model is invariant (variant ``none``) or close to it, and no O_h-invariant function
    separates the two screws, so O_h configurations use :data:`MERGED_CLASSES`; O uses
    :data:`CLASSES`. Raises :class:`ConfigError` when ``config.classes`` does not match.
    """
    if config.dimensions != 3:
        raise ConfigError(f"{printable(config.name)}: the tetracubes are voxels; this configuration has image_size, not grid_size")
    names = MERGED_CLASSES if config.group.family == "Oh" else CLASSES
    if config.classes != len(names):
        raise ConfigError(f"{printable(config.name)}: classes = {config.classes}, but the {config.group} tetracube data have "
                          f"{len(names)} classes ({', '.join(names)}): set classes = {len(names)}")
    return names


def load_voxel_data(config: ModelConfig, per_class: int = 100, test_size: int = 200, seed: int = 0,
                    noise: float = 0.1) -> tuple[Digits, Digits]:
    """:func:`load_polycubes` for ``config`` (its grid size and :func:`classes_for`, checked)."""
    names = classes_for(config)
    return load_polycubes(config.image_size, per_class, test_size, seed, noise, merge_mirror=names == MERGED_CLASSES)
