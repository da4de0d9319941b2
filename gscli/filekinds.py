"""The kinds of operator file: what each holds (datasets, attributes) and what must agree inside it.

The root attribute ``kind`` of a file names its kind (absent: ``"group"``, as in files written
before kinds existed); :mod:`gscli.fileformat` reads and writes the container the same way for every
kind and asks the kind's :class:`FileKind` for its dataset schema, its required attributes, its spec
and its consistency checks. A new operator family adds its kind here (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gscli.errors import FormatError
from gscli.specs import GridOperatorSpec, GroupSpec, OperatorSpec, SubgroupSpec

__all__ = ["FileKind", "KINDS", "FILE_KINDS", "BAND_DTYPE", "grid_dataset_names", "kind_of"]

BAND_DTYPE = np.dtype([("eigenvalue", "<f8"), ("dimension", "<i8"), ("kept", "<i8")])


@dataclass(frozen=True)
class FileKind:
    """One kind of operator file.

    ``schema(attrs, where)``: dataset name -> (dtype, required), dtype ``None`` for a utf-8 string
    dataset; ``spec(attrs)``: the operator the file names; ``validate(data, spec, where)``: raise
    :class:`FormatError` unless shapes, ranges and bookkeeping agree with that operator.
    """

    name: str
    required_attrs: tuple[str, ...]
    schema: Callable[[dict[str, Any], str], dict[str, tuple[Any, bool]]]
    spec: Callable[[dict[str, Any]], Any]
    validate: Callable[[Any, Any, str], None]


# --------------------------------------------------------------------------------------------------
# Finite groups: G onto H.

# name -> (dtype, required); dtype None: a utf-8 string dataset
_GROUP_DATASETS: dict[str, tuple[Any, bool]] = {
    "downsample": ("<f8", True),
    "upsample": ("<f8", True),
    "antialias": ("<f8", True),
    "basis": ("<f8", True),
    "subgroup_nodes": ("<i8", True),
    "bands": (BAND_DTYPE, True),
    "group_cayley": ("<i4", True),
    "subgroup_cayley": ("<i4", True),
    "group_generators": ("<i8", True),
    "group_element_names": (None, True),
    "group_matrices": ("<f8", False),
}
_REQUIRED_ATTRS = (
    "format", "format_version", "group", "subgroup", "rate", "group_order", "subgroup_order",
    "group_identity", "subgroup_identity", "solver", "checksum",
)
_GROUP_ATTRS = (
    "format", "format_version", "group", "subgroup", "rate", "group_order", "subgroup_order",
    "group_identity", "subgroup_identity", "solver", "checksum",
)


def _validate_group(data: Any, spec: OperatorSpec, where: str) -> None:
    """Shapes, index ranges, finiteness and band bookkeeping agree with the operator the file names."""
    n, m = spec.group.order, spec.subgroup.order
    a = data.arrays
    expected = {
        "downsample": (m, n), "upsample": (n, m), "antialias": (n, n), "basis": (n, m),
        "subgroup_nodes": (m,), "group_cayley": (n, n), "subgroup_cayley": (m, m), "group_element_names": (n,),
    }
    if "group_matrices" in a:
        expected["group_matrices"] = (n, 3, 3)
    for name, shape in expected.items():
        if a[name].shape != shape:
            raise FormatError(f"{where}: dataset {name!r} has shape {a[name].shape}, expected {shape} for {spec}")
    for name in ("bands", "group_generators"):
        if a[name].ndim != 1:
            raise FormatError(f"{where}: dataset {name!r} has shape {a[name].shape}, expected a 1-d array")
    if data.attrs["group_order"] != n or data.attrs["subgroup_order"] != m or data.attrs["rate"] != n // m:
        raise FormatError(
            f"{where}: attributes group_order={data.attrs['group_order']}, subgroup_order={data.attrs['subgroup_order']}, "
            f"rate={data.attrs['rate']} disagree with {spec} ({n}, {m}, {n // m})"
        )
    for name, bound in (("subgroup_nodes", n), ("group_cayley", n), ("subgroup_cayley", m), ("group_generators", n)):
        if a[name].size and (a[name].min() < 0 or a[name].max() >= bound):
            raise FormatError(f"{where}: dataset {name!r} has indices outside 0..{bound - 1}")
    for key, bound in (("group_identity", n), ("subgroup_identity", m)):
        if not 0 <= data.attrs[key] < bound:
            raise FormatError(f"{where}: attribute {key!r} = {data.attrs[key]!r} is not an index below {bound}")
    for name in ("downsample", "upsample", "antialias", "basis", "group_matrices"):
        if name in a and not np.isfinite(a[name]).all():
            raise FormatError(f"{where}: dataset {name!r} holds NaN or infinite values")
    bands = a["bands"]
    dims, kept = bands["dimension"], bands["kept"]
    if (not np.isfinite(bands["eigenvalue"]).all() or (dims < 1).any() or (kept < 0).any() or (kept > dims).any()
            or int(dims.sum()) != n or int(kept.sum()) != m):
        raise FormatError(
            f"{where}: dataset 'bands' is inconsistent: band dimensions must sum to |G| = {n} and kept "
            f"dimensions (each between 0 and its band's) to |H| = {m}"
        )


# --------------------------------------------------------------------------------------------------
# Grids: a resolution change Z_N -> Z_M per axis.

_GRID_ATTRS = ("format", "format_version", "kind", "operator", "dims", "construction", "checksum")
_GRID_FIELDS: dict[str, Any] = {"downsample": "<f8", "upsample": "<f8", "projector": "<f8", "frequencies": "<i8"}


def grid_dataset_names(dims: int) -> dict[str, Any]:
    """Dataset name -> dtype of a grid-operator file with ``dims`` axes (``axis0/downsample``, ...)."""
    return {f"axis{a}/{name}": dtype for a in range(dims) for name, dtype in _GRID_FIELDS.items()}


def _grid_schema(attrs: dict[str, Any], where: str) -> dict[str, tuple[Any, bool]]:
    dims = attrs.get("dims")
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 3:
        raise FormatError(f"{where}: attribute 'dims' is {dims!r}, expected 1, 2 or 3")
    return {name: (dtype, True) for name, dtype in grid_dataset_names(dims).items()}


def _validate_grid(data: Any, spec: GridOperatorSpec, where: str) -> None:
    """Shapes, finiteness and the kept frequencies agree with the grid operator the file names."""
    if data.attrs["dims"] != spec.dims:
        raise FormatError(f"{where}: attribute dims={data.attrs['dims']} disagrees with {spec} ({spec.dims} axes)")
    for axis, (n, m) in enumerate(spec.axes):
        h = (m - 1) // 2
        expected = {"downsample": (m, n), "upsample": (n, m), "projector": (n, n), "frequencies": (2 * h + 1,)}
        for name, shape in expected.items():
            array = data.arrays[f"axis{axis}/{name}"]
            if array.shape != shape:
                raise FormatError(f"{where}: dataset 'axis{axis}/{name}' has shape {array.shape}, expected {shape} for {spec}")
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise FormatError(f"{where}: dataset 'axis{axis}/{name}' holds NaN or infinite values")
        freqs = data.arrays[f"axis{axis}/frequencies"]
        if freqs.size and (freqs.min() <= -n or freqs.max() >= n):
            raise FormatError(f"{where}: dataset 'axis{axis}/frequencies' has frequencies outside -{n - 1}..{n - 1}")


# --------------------------------------------------------------------------------------------------
# The table.

#: Every kind this gscli reads and writes, by the name stored in the ``kind`` attribute.
FILE_KINDS: dict[str, FileKind] = {
    "group": FileKind(
        "group", _GROUP_ATTRS, lambda attrs, where: _GROUP_DATASETS,
        lambda attrs: OperatorSpec(GroupSpec.parse(attrs["group"]), SubgroupSpec.parse(attrs["subgroup"])),
        _validate_group,
    ),
    "grid": FileKind(
        "grid", _GRID_ATTRS, _grid_schema, lambda attrs: GridOperatorSpec.parse(attrs["operator"]), _validate_grid,
    ),
}

#: What an operator file can hold (root attribute ``kind``; absent means ``"group"``).
KINDS = tuple(FILE_KINDS)


def kind_of(attrs: dict[str, Any], where: str) -> FileKind:
    """The kind a file's attributes name; an unknown one is refused with a message to upgrade."""
    kind = attrs.get("kind", "group")
    if kind not in FILE_KINDS:
        raise FormatError(f"{where}: holds an operator of kind {kind!r}, which this gscli does not know "
                          f"(it reads {', '.join(KINDS)}); upgrade gscli (pip install -U gscli)")
    return FILE_KINDS[kind]
