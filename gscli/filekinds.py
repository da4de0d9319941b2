"""The kinds of operator file: what each holds (datasets, attributes) and what must agree inside it.

The root attribute ``kind`` of a file names its kind (absent: ``"group"``, as in files written
before kinds existed); :mod:`gscli.fileformat` reads and writes the container the same way for every
kind and asks the kind's :class:`FileKind` for its dataset schema, its required attributes, its spec
and its consistency checks. A new operator family adds its kind here (docs/architecture.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gscli.errors import FormatError
from gscli.specs import ContinuousOperatorSpec, GridOperatorSpec, GroupSpec, OperatorSpec, SubgroupSpec

__all__ = ["FileKind", "KINDS", "FILE_KINDS", "BAND_DTYPE", "CONTINUOUS_DATASETS", "CONTINUOUS_MODES", "grid_dataset_names",
           "kind_of"]

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
# Continuous groups: band-limited fields of G (SO(2), O(2), SO(3), O(3)) sampled on a finite H.

#: ``antialias`` (|H| <= dim: S U = I) or ``no-antialias`` (|H| > dim: P = I, U S = I).
CONTINUOUS_MODES = ("antialias", "no-antialias")

#: Dataset name -> (dtype, required) of a continuous-group operator file (docs/continuous.md).
CONTINUOUS_DATASETS: dict[str, tuple[Any, bool]] = {
    "sampling": ("<f8", True),
    "downsample": ("<f8", True),
    "upsample": ("<f8", True),
    "antialias": ("<f8", True),
    "basis": ("<f8", True),
    "irrep_images": ("<f8", True),
    "element_matrices": ("<f8", True),
    "subgroup_cayley": ("<i8", True),
    "element_names": (None, True),
    "bands/irrep": (None, True),
    "bands/casimir": ("<f8", True),
    "bands/dimension": ("<i8", True),
    "bands/copies": ("<i8", True),
    "bands/kept": ("<i8", True),
}
_CONTINUOUS_ATTRS = (
    "format", "format_version", "kind", "operator", "mode", "escnn_subgroup_id", "subgroup_identity", "solver",
    "checks", "checksum",
)


def _irrep_id(text: str, where: str) -> list:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not (isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in value)):
        raise FormatError(f"{where}: dataset 'bands/irrep' holds {text!r:.60}, not an escnn irrep id (a JSON list of numbers)")
    return value


def _validate_continuous(data: Any, spec: ContinuousOperatorSpec, where: str) -> None:
    """Shapes, ranges, finiteness, the band table and the mode agree with the operator the file names."""
    a, attrs = data.arrays, data.attrs
    m, dim = spec.subgroup_order, spec.group.dimension
    mode = attrs["mode"]
    if mode not in CONTINUOUS_MODES:
        raise FormatError(f"{where}: attribute 'mode' is {mode!r:.40}, expected one of {', '.join(CONTINUOUS_MODES)}")
    expected_mode = CONTINUOUS_MODES[0] if m <= dim else CONTINUOUS_MODES[1]
    if mode != expected_mode:
        raise FormatError(f"{where}: attribute 'mode' is {mode!r} but {spec} has |H| = {m} and dim = {dim}: "
                          f"expected {expected_mode!r}")
    if json.loads(attrs["escnn_subgroup_id"]) != json.loads(json.dumps(spec.escnn_subgroup_id)):
        raise FormatError(f"{where}: attribute 'escnn_subgroup_id' is {attrs['escnn_subgroup_id']!r:.60}, but escnn "
                          f"names {spec.subgroup} in {spec.group.name} {spec.escnn_subgroup_id!r}")
    if not 0 <= attrs["subgroup_identity"] < m:
        raise FormatError(f"{where}: attribute 'subgroup_identity' = {attrs['subgroup_identity']!r} is not an index below {m}")
    table = {name: a[f"bands/{name}"] for name in ("irrep", "casimir", "dimension", "copies", "kept")}
    k = len(table["irrep"])
    if k == 0 or any(v.shape != (k,) for v in table.values()):
        raise FormatError(f"{where}: the band table ('bands/*') must be 1-d datasets of one length, found "
                          + ", ".join(f"{n} {v.shape}" for n, v in table.items()))
    for text in table["irrep"]:
        _irrep_id(text, where)
    dims, copies, kept, casimir = table["dimension"], table["copies"], table["kept"], table["casimir"]
    rank = min(m, dim)
    if ((dims < 1).any() or (copies < 1).any() or (dims % copies).any() or (kept < 0).any() or (kept > dims).any()
            or not np.isfinite(casimir).all() or (np.diff(casimir) < 0).any()
            or int(dims.sum()) != dim or int(kept.sum()) != rank):
        raise FormatError(
            f"{where}: the band table is inconsistent: band dimensions (multiples of their copies) must sum to "
            f"dim = {dim}, kept dimensions (each between 0 and its band's) to min(|H|, dim) = {rank}, by ascending Casimir"
        )
    q = int(sum((int(d) // int(c)) ** 2 for d, c in zip(dims, copies)))
    side = a["element_matrices"].shape[-1] if a["element_matrices"].ndim == 3 else -1
    if side != (2 if spec.group.family in ("SO2", "O2") else 3):
        raise FormatError(f"{where}: dataset 'element_matrices' has shape {a['element_matrices'].shape}, expected "
                          f"({m}, k, k) with k = 2 for planar and 3 for spatial groups")
    expected = {
        "sampling": (m, dim), "downsample": (m, dim), "upsample": (dim, m), "antialias": (dim, dim), "basis": (dim, rank),
        "irrep_images": (m, q), "element_matrices": (m, side, side), "subgroup_cayley": (m, m), "element_names": (m,),
    }
    for name, shape in expected.items():
        if a[name].shape != shape:
            raise FormatError(f"{where}: dataset {name!r} has shape {a[name].shape}, expected {shape} for {spec}")
        if a[name].dtype.kind == "f" and not np.isfinite(a[name]).all():
            raise FormatError(f"{where}: dataset {name!r} holds NaN or infinite values")
    cayley = a["subgroup_cayley"]
    if cayley.min() < 0 or cayley.max() >= m:
        raise FormatError(f"{where}: dataset 'subgroup_cayley' has indices outside 0..{m - 1}")


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
    "continuous": FileKind(
        "continuous", _CONTINUOUS_ATTRS, lambda attrs, where: CONTINUOUS_DATASETS,
        lambda attrs: ContinuousOperatorSpec.parse(attrs["operator"]), _validate_continuous,
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
