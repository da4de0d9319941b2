"""The operator file: one self-describing HDF5 file per operator (numpy and h5py only).

Layout (``format = "gscli-operator"``, ``format_version = 2``). The file is a standard HDF5 file
with a 512-byte *user block* (HDF5 skips it; ``h5dump`` and ``h5py`` open the file as usual)
holding one ASCII line, then NUL bytes::

    gscli-operator 2 sha256:<64 hex digits> size:<bytes>\\n

where ``sha256`` is the digest of every byte after the user block and ``size`` their number.
The HDF5 part holds::

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
``escnn_subgroup_id`` (JSON: escnn's id of H in G, ``G.subgroup(id)``, e.g. ``[0, 6]`` in D12 or ``[false, 4]``
in O, else ``null``), ``escnn_gspace`` (point groups: escnn's 3-D gspace of H-fields, e.g.
``rot2dOnR3(4)``, or ``""`` when escnn has none; absent from planar files and from format-2 files
written before it, which stay readable), ``selection``,
``solver``, ``solver_band_tol``, ``solver_rank_tol``, ``aliasing_cost``, ``cayley_generators`` (``"escnn"``
for escnn's generators, else the chosen ones by name; absent in older files: escnn's), ``checks`` (JSON list of the
measured checks), producer versions ``gscli_version``, ``escnn_version``, ``numpy_version``,
``h5py_version``, and ``checksum`` = ``sha256:<hex>`` of every dataset (name, dtype, shape, bytes).

Reading (:func:`read_operator`) checks, in this order and before any number is used: the header
line and its format version; the file size; the whole-file digest (so the HDF5 library never parses
a byte that was not verified: it is not hardened against damaged files and can crash on them);
then, inside HDF5, the format name and version, every attribute's type, every dataset's presence,
dtype and shape, index ranges, finiteness, and the dataset checksum. Any failure is a
:class:`~gscli.errors.FormatError` naming the file and the problem. Nothing in a file is executed or
unpickled: strings are data, spec strings go through the same strict parser as user input, JSON
attributes through :func:`json.loads` only.

Format 1 (before this layout) had no user block; such files are refused with a message to rebuild.

**Kinds.** The root attribute ``kind`` names what the file holds and so which datasets and
attributes it must have; a file without it is a group operator (``kind = "group"``, the layout
above), so every group-operator file written before kinds existed still reads. ``kind = "grid"``
is a resolution change on a periodic grid (docs/scale.md, ``Z28x28>Z20x20``): one HDF5 group per axis
``a`` = 0 .. d-1, with N_a the fine and M_a the coarse size and h = ⌊(M_a − 1)/2⌋::

    /axis<a>/downsample  (M_a, N_a) float64  D_{N→M}, the ideal downscaling (odd band |k| <= h)
    /axis<a>/upsample    (N_a, M_a) float64  U_{M→N} = (N/M) D^T, zero-padding the spectrum
    /axis<a>/projector   (N_a, N_a) float64  U D, the orthogonal projector onto the band
    /axis<a>/frequencies (2h+1,)    int64    the kept signed frequencies -h .. h

with the attributes ``format``, ``format_version``, ``kind``, ``operator`` (the spec, e.g.
``Z28x28>Z20x20``), ``dims``, ``construction``, ``checks``, producer versions and ``checksum``.
The d-dimensional operator is the Kronecker product of the per-axis ones (stored per axis: d N^2
numbers instead of N^{2d}). A kind this gscli does not know is refused with a message to upgrade.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gscli.errors import FormatError, GscliError, StoreError
from gscli.atomic import FOREIGN_TEMPORARY_AGE, atomic_write, remove_stale_temporaries, temporary_path
from gscli.filekinds import BAND_DTYPE, KINDS, grid_dataset_names, kind_of
from gscli.specs import parse_operator_spec
from gscli.store import check_writable

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "KINDS",
    "BAND_DTYPE",
    "grid_dataset_names",
    "OperatorData",
    "write_operator",
    "read_operator",
    "array_checksum",
    "atomic_write",
    "temporary_path",
    "FOREIGN_TEMPORARY_AGE",
    "remove_stale_temporaries",
]

FORMAT = "gscli-operator"
FORMAT_VERSION = 2

#: Size of the HDF5 user block that holds the header line (a power of two >= 512, as HDF5 requires).
HEADER_SIZE = 512


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HEADER_RE = re.compile(rb"gscli-operator (?P<version>[1-9][0-9]{0,8}) sha256:(?P<digest>[0-9a-f]{64}) size:(?P<size>[0-9]{1,15})\n")
_VERSION_RE = re.compile(rb"gscli-operator (?P<version>[0-9]{1,9})[ \n]")

# Types of the attributes gscli knows; unknown attributes are kept as data and never interpreted.
_INT, _FLOAT, _STR = "int", "float", "str"
_ATTR_TYPES = {
    "format": _STR, "format_version": _INT, "group": _STR, "subgroup": _STR, "rate": _INT,
    "group_order": _INT, "subgroup_order": _INT, "group_identity": _INT, "subgroup_identity": _INT,
    "subgroup_source": _STR, "escnn_subgroup_id": _STR, "escnn_gspace": _STR, "selection": _STR, "solver": _STR,
    "solver_band_tol": _FLOAT, "solver_rank_tol": _FLOAT, "aliasing_cost": _FLOAT, "checks": _STR,
    "gscli_version": _STR, "escnn_version": _STR, "numpy_version": _STR, "h5py_version": _STR, "checksum": _STR,
    "cayley_generators": _STR,
}
_ATTR_TYPES.update({"kind": _STR, "operator": _STR, "dims": _INT, "construction": _STR})
_ATTR_TYPES.update({"mode": _STR, "sampling_convention": _STR})  # kind "continuous"
_JSON_ATTRS = ("checks", "escnn_subgroup_id")

@dataclass(eq=False)
class OperatorData:
    """Everything an operator file holds, as numpy arrays and plain attributes.

    Attributes
    ----------
    arrays : dict of str to numpy.ndarray
        The datasets (see the module docstring for names, shapes and dtypes).
    attrs : dict of str to str, int or float
        The root attributes, type-checked on load.
    path : pathlib.Path or None
        The file it was read from.
    verified : bool
        True only when :func:`read_operator` checked the whole-file digest, the size and the dataset
        checksum before returning it; False for data built in memory or read with ``verify=False``.
    """

    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    verified: bool = False

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def kind(self) -> str:
        """The ``kind`` attribute (:mod:`gscli.filekinds`): ``"group"`` (G>H) or ``"grid"`` (Z<N>>Z<M>)."""
        return str(self.attrs.get("kind", "group"))

    @property
    def spec(self) -> Any:
        """The operator, parsed by the strict spec parser from the attributes its kind names: ``G>H``
        from ``group`` and ``subgroup``, or for a grid operator ``operator`` (``Z28x28>Z20x20``)."""
        return kind_of(self.attrs, str(self.path or "operator")).spec(self.attrs)

    @property
    def checks(self) -> list[dict]:
        """The checks measured when the file was built (as stored; ``gscli eval`` re-measures)."""
        return json.loads(self.attrs.get("checks", "[]"))


def _canonical(name: str, array: np.ndarray, schema: dict[str, tuple[Any, bool]]) -> np.ndarray:
    dtype = schema[name][0]
    if dtype is None:
        return np.asarray([str(s) for s in array], dtype=object)
    return np.ascontiguousarray(array, dtype=dtype)


def array_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array: its name, dtype, shape and bytes (little-endian, C order).

    Parameters
    ----------
    arrays : dict of str to numpy.ndarray
        Numeric arrays, or 1-d object arrays of strings (hashed as utf-8).

    Returns
    -------
    str
        ``"sha256:<hex>"``.
    """
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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _header(digest: str, size: int) -> bytes:
    line = f"{FORMAT} {FORMAT_VERSION} sha256:{digest} size:{size}\n".encode("ascii")
    assert len(line) < HEADER_SIZE
    return line + b"\0" * (HEADER_SIZE - len(line))


def _seal_image(image: memoryview) -> None:
    """Write the header (digest and size of everything after the user block) into ``image``'s user block."""
    body = image[HEADER_SIZE:]
    image[:HEADER_SIZE] = _header(hashlib.sha256(body).hexdigest(), len(body))


def _seal(path: Path) -> None:
    """:func:`_seal_image` for a file on disk."""
    with open(path, "rb+") as fh:
        image = bytearray(fh.read())
        _seal_image(memoryview(image))
        fh.seek(0)
        fh.write(image[:HEADER_SIZE])
        fh.flush()


def _writable_attr(key: str, value: Any) -> str | int | float:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FormatError(f"cannot write attribute {key!r} = {value!r}: attributes are str, int or float")
    kind = _ATTR_TYPES.get(key)
    if kind == _INT and not isinstance(value, int) or kind == _STR and not isinstance(value, str):
        raise FormatError(f"cannot write attribute {key!r} = {value!r}: it must be of type {kind}")
    if kind == _FLOAT and not isinstance(value, (int, float)):
        raise FormatError(f"cannot write attribute {key!r} = {value!r}: it must be a number")
    return float(value) if kind == _FLOAT else value


def write_operator(path: Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> str:
    """Write an operator file atomically and return its dataset checksum.

    The file is made in memory, sealed (header with the whole-file digest), written to a temporary
    beside ``path``, read back and verified with :func:`read_operator`, and only then renamed onto ``path``.

    Parameters
    ----------
    path : pathlib.Path
        Destination; its folder must exist and be writable.
    arrays : dict of str to numpy.ndarray
        The datasets of the module docstring (all required ones; no others).
    attrs : dict of str to str, int or float
        Attributes; ``format``, ``format_version``, producer versions of numpy/h5py and
        ``checksum`` are added here.

    Returns
    -------
    str
        The dataset checksum ``"sha256:<hex>"``.

    Raises
    ------
    FormatError
        Unknown or missing datasets, attributes of the wrong type, or a file that does not verify.
    StoreError
        The folder is missing or not writable, or writing failed (e.g. the disk is full); the old
        file, if any, is unchanged.
    """
    import h5py

    kind = kind_of(attrs, f"cannot write {path}")
    schema = kind.schema(attrs, f"cannot write {path}")
    unknown = set(arrays) - set(schema)
    if unknown:
        raise FormatError(f"cannot write {path}: unknown datasets {sorted(unknown)}; known: {', '.join(schema)}")
    missing = [name for name, (_, required) in schema.items() if required and name not in arrays]
    if missing:
        raise FormatError(f"cannot write {path}: missing datasets {', '.join(missing)}")
    canonical = {name: _canonical(name, a, schema) for name, a in arrays.items()}
    checksum = array_checksum(canonical)
    all_attrs = {
        **{key: _writable_attr(key, value) for key, value in attrs.items()},
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "checksum": checksum,
    }
    absent = [key for key in kind.required_attrs if key not in all_attrs]
    if absent:
        raise FormatError(f"cannot write {path}: missing attributes {', '.join(absent)}")
    check_writable(Path(path).parent)

    def write(tmp: Path) -> None:
        # HDF5 writes into memory, and Python writes the bytes: a full disk is then an OSError, where
        # HDF5 writing to the file itself fails inside destructors and can crash the process.
        buffer = io.BytesIO()
        with h5py.File(buffer, "w", userblock_size=HEADER_SIZE) as f:
            for name, a in canonical.items():
                if a.dtype == object:
                    f.create_dataset(name, data=a.astype(str).tolist(), dtype=h5py.string_dtype("utf-8"))
                else:
                    f.create_dataset(name, data=a)
            for key, value in all_attrs.items():
                f.attrs[key] = value
        with buffer.getbuffer() as image:
            _seal_image(image)
            with open(tmp, "xb") as fh:
                fh.write(image)
        del buffer  # before the file is read back: one copy in memory at a time
        back = read_operator(tmp)  # never rename a file into place that does not read back
        if back.attrs["checksum"] != checksum:
            raise FormatError(f"{tmp}: the written file reads back differently; nothing was replaced")

    try:
        atomic_write(Path(path), write)
    except OSError as exc:  # a full disk, a vanished folder, a special file system: one line, not a traceback
        reason = os.strerror(exc.errno) if exc.errno else str(exc).splitlines()[0]
        raise StoreError(f"cannot write {str(path)!r}: {reason}; nothing was replaced") from None
    return checksum


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _upgrade(where: str, version: int) -> FormatError:
    return FormatError(
        f"{where}: format_version {version} is newer than this gscli reads ({FORMAT_VERSION}); "
        "upgrade gscli (pip install -U gscli)"
    )


def _parse_header(head: bytes, where: str) -> tuple[int, str, int]:
    """Return (version, digest, size) from the first :data:`HEADER_SIZE` bytes of a file."""
    if not head:
        raise FormatError(f"{where}: empty file, not an operator file")
    if head.startswith(_HDF5_SIGNATURE):
        raise FormatError(
            f"{where}: an HDF5 file without a gscli header: not a gscli operator file, or one written by "
            f"an older gscli (format 1); rebuild it with: gscli build --force"
        )
    if not head.startswith(FORMAT.encode() + b" "):
        raise FormatError(f"{where}: not a gscli operator file (it starts with {head[:16]!r}, not {FORMAT!r})")
    m = _VERSION_RE.match(head)
    if m is not None and int(m.group("version")) > FORMAT_VERSION:
        raise _upgrade(where, int(m.group("version")))
    if len(head) < HEADER_SIZE:
        raise FormatError(f"{where}: truncated: {len(head)} bytes, shorter than the {HEADER_SIZE}-byte header")
    m = _HEADER_RE.match(head)
    if m is None or any(head[m.end():]):
        first_line = head.split(b"\n", 1)[0][:120]
        raise FormatError(f"{where}: damaged header: {first_line!r}")
    version = int(m.group("version"))
    if version != FORMAT_VERSION:
        raise FormatError(f"{where}: format_version {version} is older than this gscli reads; rebuild it with: gscli build --force")
    return version, m.group("digest").decode(), int(m.group("size"))


def _read_bytes(path: Path, where: str, verify: bool) -> bytes:
    """The whole file, after checking its header, size and (if ``verify``) whole-file digest."""
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer (no effect on regular files)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(info.st_mode):
                raise FormatError(f"{where}: not a regular file")
            head = fh.read(HEADER_SIZE)
            _, digest, size = _parse_header(head, where)
            expected = HEADER_SIZE + size
            if verify and info.st_size != expected:
                what = "truncated" if info.st_size < expected else "has trailing bytes"
                raise FormatError(f"{where}: {what}: {info.st_size} bytes, the header says {expected}")
            body = fh.read()
    except FileNotFoundError:
        raise FormatError(f"{where}: no such operator file") from None
    except IsADirectoryError:
        raise FormatError(f"{where}: is a folder, not an operator file") from None
    except OSError as exc:
        raise FormatError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if verify:
        if len(body) != size:
            raise FormatError(f"{where}: truncated while reading: {HEADER_SIZE + len(body)} bytes, the header says {expected}")
        actual = hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise FormatError(f"{where}: damaged: the file's sha256 is {actual}, its header says {digest}")
    return head + body


def _attr(where: str, key: str, value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{where}: attribute {key!r} is not valid utf-8") from None
    elif isinstance(value, np.generic):
        value = value.item()
    kind = _ATTR_TYPES.get(key)
    if kind is None:
        return value
    ok = {
        _STR: isinstance(value, str),
        _INT: isinstance(value, int) and not isinstance(value, bool),
        _FLOAT: isinstance(value, (int, float)) and not isinstance(value, bool),
    }[kind]
    if not ok:
        raise FormatError(f"{where}: attribute {key!r} is {type(value).__name__} {value!r:.80}, expected {kind}")
    return value


def _check_json(where: str, attrs: dict[str, Any]) -> None:
    for key in _JSON_ATTRS:
        if key not in attrs:
            continue
        try:
            value = json.loads(attrs[key])
        except (ValueError, RecursionError):
            raise FormatError(f"{where}: attribute {key!r} is not valid JSON: {attrs[key]!r:.80}") from None
        if key == "checks" and not (isinstance(value, list) and all(isinstance(c, dict) for c in value)):
            raise FormatError(f"{where}: attribute 'checks' must be a JSON list of objects")


def _read_hdf5(image: bytes, where: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import h5py

    with h5py.File(io.BytesIO(image), "r") as f:
        attrs = {k: _attr(where, k, v) for k, v in f.attrs.items()}
        if attrs.get("format") != FORMAT:
            raise FormatError(f"{where}: not a gscli operator file (format attribute is {attrs.get('format')!r}, expected {FORMAT!r})")
        version = attrs.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise FormatError(f"{where}: format_version is {version!r}, expected a positive integer")
        if version > FORMAT_VERSION:
            raise _upgrade(where, version)
        if version != FORMAT_VERSION:
            raise FormatError(f"{where}: format_version attribute {version} disagrees with the header ({FORMAT_VERSION})")
        kind = kind_of(attrs, where)
        missing = [a for a in kind.required_attrs if a not in attrs]
        if missing:
            raise FormatError(f"{where}: missing attributes {', '.join(missing)}")
        _check_json(where, attrs)
        arrays: dict[str, np.ndarray] = {}
        for name, (dtype, required) in kind.schema(attrs, where).items():
            if name not in f:
                if required:
                    raise FormatError(f"{where}: missing dataset {name!r}")
                continue
            node = f[name]
            if not isinstance(node, h5py.Dataset):
                raise FormatError(f"{where}: {name!r} is not a dataset")
            if dtype is None:
                if h5py.check_string_dtype(node.dtype) is None or node.ndim != 1:
                    raise FormatError(f"{where}: dataset {name!r} must be a 1-d string dataset, found {node.dtype} {node.shape}")
                arrays[name] = np.asarray(node.asstr()[()], dtype=object)
            else:
                data = node[()]
                if not isinstance(data, np.ndarray) or data.dtype != np.dtype(dtype):
                    found = getattr(data, "dtype", type(data).__name__)
                    raise FormatError(f"{where}: dataset {name!r} has dtype {found}, expected {np.dtype(dtype)}")
                arrays[name] = data
    return arrays, attrs


def _reinstall_hint(read: Callable[..., OperatorData]) -> Callable[..., OperatorData]:
    """A refused file that ships with gscli (a broken install) names the command that restores it."""

    @functools.wraps(read)
    def reader(path: str | os.PathLike, *args: Any, **kwargs: Any) -> OperatorData:
        try:
            return read(path, *args, **kwargs)
        except FormatError as exc:
            from gscli.catalog import is_shipped, reinstall_command

            if is_shipped(path):
                raise FormatError(f"{exc}; this file ships with gscli: reinstall it with: {reinstall_command()}") from None
            raise

    return reader


@_reinstall_hint
def read_operator(
    path: str | os.PathLike, verify: bool = True, expect: Any = None
) -> OperatorData:
    """Read and verify an operator file: the one way gscli opens operator files.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.h5`` file.
    verify : bool
        Check the whole-file digest, the size and the dataset checksum (default). ``False`` hands
        unverified bytes to the HDF5 library, which is not hardened against damaged files (it can
        crash or hang on them); no gscli command uses it. The result says which it was
        (:attr:`OperatorData.verified`).
    expect : OperatorSpec or str, optional
        The operator the caller asked for (e.g. the catalog name the file was found under): a file
        holding another ``G>H`` is refused.

    Returns
    -------
    OperatorData
        Arrays (``downsample`` (m, n), ``upsample`` (n, m), ``antialias`` (n, n), ...) and attributes.

    Raises
    ------
    FormatError
        Naming the file and the problem, for a missing, truncated, foreign, corrupted, malformed
        or newer-version file, or one holding another operator than ``expect``. No other exception
        escapes for a bad file.
    """
    path = Path(path)
    where = str(path)
    wanted = parse_operator_spec(expect) if isinstance(expect, str) else expect
    image = _read_bytes(path, where, verify)
    try:
        arrays, attrs = _read_hdf5(image, where)
    except GscliError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py/HDF5 raise many types on malformed input
        raise FormatError(f"{where}: cannot read operator file ({type(exc).__name__}: {exc})") from None
    data = OperatorData(arrays, attrs, path)
    try:
        spec = data.spec
    except GscliError as exc:  # a spec attribute that does not parse is a format problem
        raise FormatError(f"{where}: {exc}") from None
    kind_of(attrs, where).validate(data, spec, where)
    if verify:
        actual = array_checksum(arrays)
        if actual != attrs["checksum"]:
            raise FormatError(f"{where}: checksum mismatch: the arrays were changed or damaged (stored {attrs['checksum']}, computed {actual})")
    if wanted is not None and data.spec != wanted:
        raise FormatError(f"{where}: holds the {data.spec} operator, not the {wanted} asked for")
    data.verified = verify
    return data
