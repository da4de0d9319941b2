"""escnn's ``nn`` and ``gspaces`` for the model builder: the models' only way into escnn.

escnn is imported through :mod:`gscli._escnn` (disk cache in the user cache folder, nothing printed
on stdout, scikit-learn's cold-cache breakage avoided); this module then hands out ``escnn.nn``,
planar gspaces, and restricted gspaces whose element order is checked against operator files.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import numpy as np
import torch

from gscli.errors import DependencyError, FormatError
from gscli.specs import GroupSpec

__all__ = ["element_indices", "enn", "gspace_of", "restrict", "voxel_permutations"]


@cache
def _modules() -> tuple[Any, Any]:
    from gscli import _escnn

    _escnn._escnn_group_module()  # quiet import with gscli's cache redirect, before escnn.nn
    try:
        return importlib.import_module("escnn.nn"), importlib.import_module("escnn.gspaces")
    except ImportError as exc:  # pragma: no cover - escnn.group imported, so escnn.nn normally does too
        raise DependencyError(f"G-CNN models need escnn.nn: {exc}; install it with: pip install 'gscli[build]'") from exc


def enn() -> Any:
    """The ``escnn.nn`` module."""
    return _modules()[0]


def gspace_of(group: GroupSpec) -> Any:
    """escnn's planar gspace for C_N (``rot2dOnR2(N)``) or D_N (``flipRot2dOnR2(N)``)."""
    gspaces = _modules()[1]
    if group.family == "C":
        return gspaces.rot2dOnR2(group.n)
    if group.family == "D":
        return gspaces.flipRot2dOnR2(group.n)
    raise FormatError(f"group {group} has no planar escnn gspace (models use C<N> or D<N>)")


def element_indices(group: Any, subgroup: Any, inclusion: Any) -> list[int]:
    """Index in ``group.elements`` of ``inclusion(h)`` for every h of ``subgroup``, in escnn's order."""
    elements = list(group.elements)
    return [elements.index(inclusion(h)) for h in subgroup.elements]


def restrict(gspace: Any, escnn_id: Any, nodes: list[int], what: str) -> Any:
    """``gspace.restrict(escnn_id)``, checked to put H's elements where the operator file does.

    Parameters
    ----------
    gspace : escnn GSpace
        The gspace of K-fields (the group being downsampled).
    escnn_id : object
        escnn's id of H in K, from the operator file.
    nodes : list of int
        The file's ``subgroup_nodes``: the index in K of each element of H, in H's order.
    what : str
        The operator, for messages.

    Returns
    -------
    escnn GSpace
        The gspace of H-fields; a regular H-field of it has its channels in the order gscli writes.

    Raises
    ------
    FormatError
        The file has no escnn subgroup id, escnn cannot restrict by it, or escnn's element order of H
        differs from the file's.
    """
    if escnn_id is None:
        raise FormatError(f"{what}: the operator file records no escnn subgroup id; rebuild it with gscli build")
    try:
        sub_gspace, inclusion, _ = gspace.restrict(escnn_id)
    except Exception as exc:  # noqa: BLE001 - escnn raises assorted errors for ids it does not accept
        raise FormatError(f"{what}: escnn cannot restrict {gspace.name} to subgroup id {escnn_id!r}: {exc}") from None
    found = element_indices(gspace.fibergroup, sub_gspace.fibergroup, inclusion)
    if found != list(nodes):
        raise FormatError(
            f"{what}: escnn's elements of the subgroup sit at {found} in {gspace.fibergroup.name}, but the operator "
            f"file's subgroup_nodes are {list(nodes)}: its H-fields would not be escnn's regular fields"
        )
    return sub_gspace


@cache
def voxel_permutations(group: GroupSpec, size: int) -> np.ndarray:
    """Every element of a point group as an exact permutation of a ``size^3`` voxel grid, in escnn's order.

    Row g is ``perm`` with ``(g . f).flatten() == f.flatten()[perm]`` for a scalar field f on the
    grid ``(size, size, size)`` (odd, centred), i.e. ``(g . f)(y) = f(g^{-1} y)``; read off escnn's
    own ``GeometricTensor.transform`` on the gspace of G (``octaOnR3()``, ``fullOctaOnR3()``,
    ``icoOnR3()``), applied to the voxel indices. Cube rotations (and inversions) move voxels onto
    voxels, so every row is a permutation; a group element that does not (in I) raises.

    Returns an int64 array of shape (|G|, size^3).
    """
    from gscli import _gspaces3d

    gspace = _gspaces3d.make(_modules()[1], _gspaces3d.gspace_of_group(group.family))
    field_type = enn().FieldType(gspace, [gspace.trivial_repr])
    index = torch.arange(size**3, dtype=torch.float64).reshape(1, 1, size, size, size)
    x = enn().GeometricTensor(index, field_type)
    rows = []
    for g in gspace.fibergroup.elements:
        moved = x.transform(g).tensor.reshape(-1)
        perm = moved.round().to(torch.int64)
        if float((moved - perm).abs().max()) > 1e-6 or sorted(perm.tolist()) != list(range(size**3)):
            raise FormatError(f"element {g} of {group} does not move the {size}^3 voxel grid onto itself; "
                              "exact voxel transforms exist for the cube groups O and Oh only")
        rows.append(perm.numpy())
    return np.stack(rows)
