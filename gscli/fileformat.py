"""The operator file: one self-describing HDF5 file per operator (numpy and h5py only).

Layout (``format = "gscli-operator"``, ``format_version = 1``)::

    /downsample        (m, n) float64   D = S P
    /upsample          (n, m) float64   U = B (S B)^{-1}
    /antialias         (n, n) float64   P, the orthogonal projector onto the bandlimited space V
    /basis             (n, m) float64   B, orthonormal basis of V (P = B B^T)
    /subgroup_nodes    (m,)   int64     index in G of each element of H, in H's order
    /bands             (k,)   compound  (eigenvalue float64, dimension int64, kept int64)
    /group_cayley      (n, n) int32     G's Cayley table in escnn's element order
    /subgroup_cayley   (m, m) int32     H's Cayley table in H's order
    /group_generators  (g,)   int64     generators defining the Cayley graph (and its Laplacian)
    /group_element_names (n,) utf-8     readable element names
    /group_matrices    (n, 3, 3) float64  standard representation (point groups only)

Root attributes: ``format``, ``format_version``, ``group``, ``subgroup``, ``rate``, ``group_order``,
``subgroup_order``, ``group_identity``, ``subgroup_identity``, ``subgroup_source``,
``escnn_subgroup_id`` (JSON: escnn's id of H in G for planar groups, e.g. ``[0, 6]``, else ``null``), ``selection``,
``solver``, ``solver_band_tol``, ``solver_rank_tol``, ``aliasing_cost``, ``checks`` (JSON list of the
measured checks), producer versions ``gscli_version``, ``escnn_version``, ``numpy_version``,
``h5py_version``, and ``checksum`` = ``sha256:<hex>`` of every dataset (name, dtype, shape, bytes).

Readers verify the format name, the version and the checksum before any number is used. Nothing in a
file is executed or unpickled; strings are data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gscli.errors import FormatError, StoreError
from gscli.specs import GroupSpec, OperatorSpec, SubgroupSpec

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "OperatorData",
    "write_operator",
    "read_operator",
    "array_checksum",
    "atomic_write",
    "remove_stale_temporaries",
]

FORMAT = "gscli-operator"
FORMAT_VERSION = 1

BAND_DTYPE = np.dtype([("eigenvalue", "<f8"), ("dimension", "<i8"), ("kept", "<i8")])

# name -> (dtype, required)
_DATASETS: dict[str, tuple[Any, bool]] = {
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


@dataclass(eq=False)
class OperatorData:
    """Everything an operator file holds, as numpy arrays and plain attributes."""

    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def spec(self) -> OperatorSpec:
        return OperatorSpec(GroupSpec.parse(self.attrs["group"]), SubgroupSpec.parse(self.attrs["subgroup"]))

    @property
    def checks(self) -> list[dict]:
        """The checks measured when the file was built (as stored; ``gscli eval`` re-measures)."""
        return json.loads(self.attrs.get("checks", "[]"))


def _canonical(name: str, array: np.ndarray) -> np.ndarray:
    dtype = _DATASETS[name][0]
    if name == "group_element_names":
        return np.asarray([str(s) for s in array], dtype=object)
    return np.ascontiguousarray(array, dtype=dtype)


def array_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array: its name, dtype, shape and bytes (little-endian, C order)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        digest.update(name.encode())
        if a.dtype == object:
            digest.update(b"utf-8")
            digest.update(repr(a.shape).encode())
            for s in a:
                encoded = str(s).encode("utf-8")
                digest.update(len(encoded).to_bytes(8, "little") + encoded)
        else:
            a = np.ascontiguousarray(a)
            digest.update(a.dtype.str.encode() + repr(a.dtype.descr).encode())
            digest.update(repr(a.shape).encode())
            digest.update(a.tobytes())
    return "sha256:" + digest.hexdigest()


_TMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]+$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by writers that no longer run; return them."""
    removed = []
    for entry in Path(folder).glob(".*.tmp-*"):
        m = _TMP_RE.match(entry.name)
        if m and not _pid_alive(int(m.group("pid"))):
            try:
                entry.unlink()
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then atomically rename the temporary file onto ``path``.

    The temporary file lives in the same folder (so the rename is atomic) and is removed if
    ``write`` fails or is interrupted: ``path`` is either the old file or the complete new one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def write_operator(path: Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> str:
    """Write an operator file atomically; return its checksum."""
    import h5py

    canonical = {name: _canonical(name, a) for name, a in arrays.items()}
    unknown = set(canonical) - set(_DATASETS)
    if unknown:
        raise ValueError(f"unknown datasets {sorted(unknown)}")
    checksum = array_checksum(canonical)
    all_attrs = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **attrs,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "checksum": checksum,
    }
    folder = Path(path).parent
    if not folder.is_dir():
        raise StoreError(f"output folder {str(folder)!r} does not exist; create it or choose another with --out")
    if not os.access(folder, os.W_OK):
        raise StoreError(f"output folder {str(folder)!r} is not writable; choose another with --out")

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for name, a in canonical.items():
                if a.dtype == object:
                    f.create_dataset(name, data=a.astype(str).tolist(), dtype=h5py.string_dtype("utf-8"))
                else:
                    f.create_dataset(name, data=a)
            for key, value in all_attrs.items():
                f.attrs[key] = value

    atomic_write(Path(path), write)
    return checksum


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_operator(path: str | os.PathLike, verify: bool = True) -> OperatorData:
    """Read and verify an operator file.

    Raises :class:`FormatError` naming the file and the problem for a missing, truncated, foreign,
    corrupted or newer-version file. ``verify=False`` skips only the checksum (for tools that
    want to show what a damaged file holds).
    """
    import h5py

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise FormatError(f"{where}: no such operator file")
    if path.is_dir():
        raise FormatError(f"{where}: is a folder, not an operator file")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _attr(v) for k, v in f.attrs.items()}
            if attrs.get("format") != FORMAT:
                raise FormatError(f"{where}: not a gscli operator file (format attribute is {attrs.get('format')!r}, expected {FORMAT!r})")
            version = attrs.get("format_version")
            if not isinstance(version, int):
                raise FormatError(f"{where}: format_version is {version!r}, expected an integer")
            if version > FORMAT_VERSION:
                raise FormatError(
                    f"{where}: format_version {version} is newer than this gscli reads ({FORMAT_VERSION}); "
                    "upgrade gscli (pip install -U gscli)"
                )
            if version < 1:
                raise FormatError(f"{where}: format_version {version} is not a valid version")
            missing = [a for a in _REQUIRED_ATTRS if a not in attrs]
            if missing:
                raise FormatError(f"{where}: missing attributes {', '.join(missing)}")
            arrays: dict[str, np.ndarray] = {}
            for name, (dtype, required) in _DATASETS.items():
                if name not in f:
                    if required:
                        raise FormatError(f"{where}: missing dataset {name!r}")
                    continue
                node = f[name]
                if not isinstance(node, h5py.Dataset):
                    raise FormatError(f"{where}: {name!r} is not a dataset")
                if name == "group_element_names":
                    arrays[name] = np.asarray(node.asstr()[()], dtype=object)
                else:
                    data = node[()]
                    if data.dtype != np.dtype(dtype):
                        raise FormatError(f"{where}: dataset {name!r} has dtype {data.dtype}, expected {np.dtype(dtype)}")
                    arrays[name] = data
    except FormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{where}: cannot read operator file ({type(exc).__name__}: {exc})") from None
    data = OperatorData(arrays, attrs, path)
    _validate_shapes(data, where)
    if verify:
        actual = array_checksum(arrays)
        if actual != attrs["checksum"]:
            raise FormatError(f"{where}: checksum mismatch: the arrays were changed or damaged (stored {attrs['checksum']}, computed {actual})")
    return data


def _validate_shapes(data: OperatorData, where: str) -> None:
    try:
        spec = data.spec
    except Exception as exc:  # a spec attribute that does not parse is a format problem
        raise FormatError(f"{where}: {exc}") from None
    n, m = spec.group.order, spec.subgroup.order
    expected = {
        "downsample": (m, n), "upsample": (n, m), "antialias": (n, n), "basis": (n, m),
        "subgroup_nodes": (m,), "group_cayley": (n, n), "subgroup_cayley": (m, m), "group_element_names": (n,),
    }
    for name, shape in expected.items():
        if data.arrays[name].shape != shape:
            raise FormatError(f"{where}: dataset {name!r} has shape {data.arrays[name].shape}, expected {shape} for {spec}")
    if data.attrs["group_order"] != n or data.attrs["subgroup_order"] != m or data.attrs["rate"] != n // m:
        raise FormatError(f"{where}: order/rate attributes disagree with {spec}")
    for name, bound in (("subgroup_nodes", n), ("group_cayley", n), ("subgroup_cayley", m), ("group_generators", n)):
        a = data.arrays[name]
        if a.size and (a.min() < 0 or a.max() >= bound):
            raise FormatError(f"{where}: dataset {name!r} has indices outside 0..{bound - 1}")
    for key, bound in (("group_identity", n), ("subgroup_identity", m)):
        if not isinstance(data.attrs[key], int) or not 0 <= data.attrs[key] < bound:
            raise FormatError(f"{where}: attribute {key!r} = {data.attrs[key]!r} is not an index below {bound}")
