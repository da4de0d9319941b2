"""Build, write and read continuous-group operators (``SO3_L3>O``): the library side of ``gscli build``.

File layout (``kind = "continuous"``, same header, whole-file digest and dataset checksum as every
gscli operator file, :mod:`gscli.fileformat`)::

    /sampling          (m, dim)  float64  S: coefficients -> values at H's elements
    /downsample        (m, dim)  float64  D = S P
    /upsample          (dim, m)  float64  U (S U = I when m <= dim; U S = I when m > dim)
    /antialias         (dim, dim) float64 P, orthogonal projector onto the kept space V (I when m > dim)
    /basis             (dim, r)  float64  B, orthonormal basis of V
    /irrep_images      (m, sum d^2) float64  rho_psi(h_i) for every irrep psi, flattened, irrep after irrep
    /element_matrices  (m, k, k) float64  H's elements included in G, acting on R^2 or R^3
    /subgroup_cayley   (m, m)    int64    H's table in escnn's order (lambda_H(h_a) e_b = e_{h_a h_b})
    /element_names     (m,)      utf-8    escnn's names of H's elements, in escnn's order
    /bands             (k,)      compound irrep (utf-8 JSON of escnn's id), casimir, dimension, copies, kept

Root attributes: ``format``, ``format_version``, ``kind`` (``"continuous"``), ``operator``
(e.g. ``SO3_L3>O``), ``mode`` (``antialias`` or ``no-antialias``), ``escnn_subgroup_id`` (JSON),
``subgroup_identity``, ``sampling_convention``, ``solver``, ``solver_rank_tol``, ``checks`` (JSON),
producer versions and ``checksum``.

Until the operator-family registry reads this kind, :func:`gscli.fileformat.read_operator` refuses
these files as a kind it does not know; :func:`read_continuous` is their reader.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gscli.checks import Check
from gscli.continuous._checks import Layout, check_continuous
from gscli.continuous._solver import ANTIALIAS, NO_ANTIALIAS, IrrepBand, RankDeficient, operators, order_bands, walk
from gscli.continuous._spec import (
    MAX_CONTINUOUS_DIM,
    ContinuousGroupSpec,
    ContinuousOperatorSpec,
    band_dimension,
    estimate_continuous_memory,
)
from gscli.errors import CheckError, FormatError, GscliError, SizeError, SpecError, StoreError
from gscli.solver import RANK_TOL

__all__ = ["ContinuousOperator", "build_continuous", "write_continuous", "read_continuous", "smallest_band_limit",
           "continuous_subgroups", "KIND", "SOLVER", "SAMPLING_CONVENTION"]

KIND = "continuous"
SOLVER = "casimir-bands/1"
SAMPLING_CONVENTION = ("f(g) = sum_psi sqrt(d_psi) sum_j sum_i rho_psi(g)[i, j] c[psi, j, i] "
                       "(escnn FourierPointwise(normalize=False); normalize=True divides by sqrt(dim))")
BAND_DTYPE = np.dtype([("irrep", object), ("casimir", "<f8"), ("dimension", "<i8"), ("copies", "<i8"), ("kept", "<i8")])

_FLOAT = ("sampling", "downsample", "upsample", "antialias", "basis", "irrep_images", "element_matrices")


@dataclass(eq=False)
class ContinuousOperator:
    """A built (or read) continuous-group operator: arrays (float64) and what they mean."""

    spec: ContinuousOperatorSpec
    mode: str
    arrays: dict[str, np.ndarray]
    bands: tuple[IrrepBand, ...]
    copies: tuple[int, ...]
    subgroup_id: Any
    subgroup_identity: int
    checks: list[Check] = field(default_factory=list)
    path: Path | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def layout(self) -> Layout:
        """Coefficient layout. The band table is in walk order, which is escnn's coefficient order: escnn's
        ``bl_regular_representation(L)`` already lists its irreps by ascending Casimir (checked at build)."""
        sizes = tuple(b.dimension // c for b, c in zip(self.bands, self.copies))
        offsets = np.concatenate([[0], np.cumsum([b.dimension for b in self.bands])[:-1]]).astype(int)
        return Layout(tuple(int(o) for o in offsets), sizes, tuple(self.copies))

    @property
    def dimension(self) -> int:
        return int(self.arrays["sampling"].shape[1])

    @property
    def order(self) -> int:
        return int(self.arrays["sampling"].shape[0])

    def recheck(self, reference: np.ndarray | None = None) -> list[Check]:
        """Re-measure every guarantee from the arrays (``reference``: escnn's samples, if escnn is at hand)."""
        a = self.arrays
        return check_continuous(
            mode=self.mode, sampling=a["sampling"], downsample=a["downsample"], upsample=a["upsample"],
            antialias=a["antialias"], irrep_images=a["irrep_images"], layout=self.layout,
            subgroup_cayley=a["subgroup_cayley"], element_matrices=a["element_matrices"],
            family=self.spec.group.family, reference=reference,
        )

    def describe(self) -> str:
        """A few lines for ``inspect``: the bands, what is kept, and the mode."""
        lines = [f"{self.spec}: {self.spec.group.name} band-limited fields (dim {self.dimension}) sampled on "
                 f"{self.spec.subgroup} (|H| = {self.order}), escnn subgroup id {self.subgroup_id!r}"]
        if self.mode == NO_ANTIALIAS:
            lines.append("no anti-aliasing needed (|H| >= dim): P = I, D = S, U = S^+ (U S = I)")
        else:
            lines.append(f"anti-aliasing: V keeps {self.order} of {self.dimension} directions")
        lines.append("irrep        casimir  dimension  kept")
        for b in self.bands:
            lines.append(f"{str(b.irrep):12s} {b.casimir:7g}  {b.dimension:9d}  {b.kept:4d}")
        return "\n".join(lines)


def _walk_for(smp: Any, rank_tol: float) -> Any:
    widths = [d * c for d, c in zip(smp.sizes, smp.copies)]
    return walk(smp.sampling, order_bands(smp.irreps, smp.casimirs, smp.offsets, widths), rank_tol)


def _works(spec: ContinuousOperatorSpec, rank_tol: float) -> tuple[bool, int]:
    from gscli.continuous import _escnn

    smp = _escnn.sampling(spec)
    result = _walk_for(smp, rank_tol)
    return result.rank == min(smp.sampling.shape), result.rank


def smallest_band_limit(spec: ContinuousOperatorSpec, rank_tol: float = RANK_TOL) -> int | None:
    """The smallest L' > spec's L at which sampling on H has full rank min(|H|, dim), or None up to the size limit."""
    family = spec.group.family
    L = spec.group.L + 1
    while band_dimension(family, L) <= MAX_CONTINUOUS_DIM:
        candidate = ContinuousOperatorSpec(ContinuousGroupSpec(family, L), spec.subgroup)
        if _works(candidate, rank_tol)[0]:
            return L
        if band_dimension(family, L) > 4 * spec.subgroup_order:  # far past |H|: it will not start working
            return None
        L += 1
    return None


def _check_memory(spec: ContinuousOperatorSpec) -> None:
    from gscli.build import available_memory

    need = estimate_continuous_memory(spec.group.dimension, spec.subgroup_order)
    free = available_memory()
    if free is not None and need > free:
        raise SizeError(f"building {spec} needs about {need / 2**30:.1f} GiB of memory (dense {spec.group.dimension}x"
                        f"{spec.group.dimension} float64 operators and their checks), and only {free / 2**30:.1f} GiB "
                        f"is available; free memory or choose a smaller L")


def build_continuous(spec: ContinuousOperatorSpec | str, rank_tol: float = RANK_TOL) -> ContinuousOperator:
    """Build and check the operator sampling ``spec.group``'s band-limited fields on ``spec.subgroup``.

    Raises
    ------
    SpecError
        H is not a subgroup escnn builds in G, or sampling on H is rank-deficient at this L (the
        message names the smallest L that works).
    CheckError
        A guarantee failed (nothing to write).
    """
    from gscli.continuous import _escnn

    spec = spec if isinstance(spec, ContinuousOperatorSpec) else ContinuousOperatorSpec.parse(spec)
    _check_memory(spec)
    smp = _escnn.sampling(spec)
    result = _walk_for(smp, rank_tol)
    if [b.irrep for b in result.bands] != list(smp.irreps):
        raise ArithmeticError(f"{spec}: escnn's coefficient order is not by ascending Casimir: {smp.irreps}")
    try:
        mode, p, d, u = operators(smp.sampling, result)
    except RankDeficient as exc:
        better = smallest_band_limit(spec, rank_tol)
        fix = (f"the smallest band limit that works is L = {better}: '{spec.group.family}_L{better}>{spec.subgroup}'"
               if better is not None else "no band limit gscli builds works")
        raise SpecError(
            f"continuous operator {spec}: sampling on {spec.subgroup} has rank {exc.rank} on the band-limited fields, "
            f"below min(|H| = {exc.order}, dim = {exc.dimension}): the samples are not independent; {fix}"
        ) from None
    _, _, _, images = _escnn.subgroup(spec)
    reference = _escnn.fourier_pointwise_matrix(spec.group, images)
    flat = np.concatenate([img.reshape(img.shape[0], -1) for img in smp.irrep_images], axis=1)
    arrays = {
        "sampling": smp.sampling, "downsample": d, "upsample": u, "antialias": p, "basis": result.basis,
        "irrep_images": flat, "element_matrices": smp.element_matrices, "subgroup_cayley": smp.subgroup_cayley,
        "element_names": np.asarray(smp.element_names, dtype=object),
    }
    copies_by_irrep = dict(zip(smp.irreps, smp.copies))
    op = ContinuousOperator(spec, mode, arrays, result.bands, tuple(copies_by_irrep[b.irrep] for b in result.bands),
                            smp.subgroup_id, smp.subgroup_identity)
    op.checks = op.recheck(reference)
    bad = [c for c in op.checks if not c.passed]
    if bad:
        raise CheckError(f"{spec}: " + "; ".join(str(c) for c in bad) + "; nothing was written")
    return op


# ------------------------------------------------------------------------------------------------
# The file.


def _bands_array(op: ContinuousOperator) -> np.ndarray:
    rows = [(json.dumps(list(b.irrep)), b.casimir, b.dimension, c, b.kept) for b, c in zip(op.bands, op.copies)]
    return np.array(rows, dtype=BAND_DTYPE)


def _checksum(op_arrays: dict[str, np.ndarray], bands: np.ndarray) -> str:
    from gscli.fileformat import array_checksum

    flat = dict(op_arrays)
    flat["bands/irrep"] = np.asarray([str(s) for s in bands["irrep"]], dtype=object)
    for name in ("casimir", "dimension", "copies", "kept"):
        flat[f"bands/{name}"] = np.ascontiguousarray(bands[name])
    return array_checksum(flat)


def write_continuous(op: ContinuousOperator, path: str | os.PathLike) -> str:
    """Write ``op`` atomically (temporary file, read back and verified, then renamed); return its checksum."""
    import h5py

    from gscli import __version__
    from gscli.fileformat import FORMAT, FORMAT_VERSION, HEADER_SIZE, _seal_image, atomic_write
    from gscli.store import check_writable

    path = Path(path)
    arrays = {k: (np.asarray(v, dtype=object) if k == "element_names" else
                  np.ascontiguousarray(v, dtype="<i8" if k == "subgroup_cayley" else "<f8"))
              for k, v in op.arrays.items()}
    bands = _bands_array(op)
    checksum = _checksum(arrays, bands)
    attrs = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": KIND, "operator": str(op.spec), "mode": op.mode,
        "escnn_subgroup_id": json.dumps(op.subgroup_id), "subgroup_identity": int(op.subgroup_identity),
        "sampling_convention": SAMPLING_CONVENTION, "solver": SOLVER, "solver_rank_tol": RANK_TOL,
        "checks": json.dumps([c.as_dict() for c in op.checks]), "gscli_version": __version__,
        "escnn_version": _escnn_version(), "numpy_version": np.__version__, "h5py_version": h5py.__version__,
        "checksum": checksum,
    }
    check_writable(path.parent)

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()
        with h5py.File(buffer, "w", userblock_size=HEADER_SIZE) as f:
            for name, a in arrays.items():
                if a.dtype == object:
                    f.create_dataset(name, data=[str(s) for s in a], dtype=h5py.string_dtype("utf-8"))
                else:
                    f.create_dataset(name, data=a)
            g = f.create_group("bands")
            g.create_dataset("irrep", data=[str(s) for s in bands["irrep"]], dtype=h5py.string_dtype("utf-8"))
            for name in ("casimir", "dimension", "copies", "kept"):
                g.create_dataset(name, data=np.ascontiguousarray(bands[name]))
            for key, value in attrs.items():
                f.attrs[key] = value
        with buffer.getbuffer() as image:
            _seal_image(image)
            with open(tmp, "xb") as fh:
                fh.write(image)
        del buffer
        back = read_continuous(tmp)
        if back.arrays["downsample"].tobytes() != arrays["downsample"].tobytes():
            raise FormatError(f"{tmp}: the written file reads back differently; nothing was replaced")

    try:
        atomic_write(path, write)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc).splitlines()[0]
        raise StoreError(f"cannot write {str(path)!r}: {reason}; nothing was replaced") from None
    return checksum


def _escnn_version() -> str:
    from gscli._escnn import escnn_version

    return escnn_version()


_SHAPES = {  # name -> (dtype, shape from (m, dim, r, sum d^2, k))
    "sampling": ("<f8", lambda m, dim, r, q, k: (m, dim)),
    "downsample": ("<f8", lambda m, dim, r, q, k: (m, dim)),
    "upsample": ("<f8", lambda m, dim, r, q, k: (dim, m)),
    "antialias": ("<f8", lambda m, dim, r, q, k: (dim, dim)),
    "basis": ("<f8", lambda m, dim, r, q, k: (dim, r)),
    "irrep_images": ("<f8", lambda m, dim, r, q, k: (m, q)),
    "element_matrices": ("<f8", lambda m, dim, r, q, k: (m, k, k)),
    "subgroup_cayley": ("<i8", lambda m, dim, r, q, k: (m, m)),
    "element_names": (None, lambda m, dim, r, q, k: (m,)),
}


def read_continuous(path: str | os.PathLike) -> ContinuousOperator:
    """Read and verify a continuous-group operator file (header, size, whole-file digest, schema, checksum).

    Raises
    ------
    FormatError
        Naming the file and the problem; no other exception escapes for a bad file.
    """
    from gscli.fileformat import _read_bytes

    path = Path(path)
    where = str(path)
    image = _read_bytes(path, where, True)
    try:
        return _parse(image, path, where)
    except GscliError as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - h5py raises many types on malformed input
        raise FormatError(f"{where}: cannot read continuous operator file ({type(exc).__name__}: {exc})") from None


def _parse(image: bytes, path: Path, where: str) -> ContinuousOperator:
    import h5py

    from gscli.fileformat import FORMAT, FORMAT_VERSION

    with h5py.File(io.BytesIO(image), "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
                 for k, v in f.attrs.items()}
        if attrs.get("format") != FORMAT or attrs.get("format_version") != FORMAT_VERSION:
            raise FormatError(f"{where}: not a gscli operator file of format {FORMAT_VERSION}")
        if attrs.get("kind") != KIND:
            raise FormatError(f"{where}: holds an operator of kind {attrs.get('kind', 'group')!r}, not {KIND!r}; "
                              f"read it with gscli.fileformat.read_operator")
        for key in ("operator", "mode", "escnn_subgroup_id", "checks", "checksum"):
            if not isinstance(attrs.get(key), str):
                raise FormatError(f"{where}: attribute {key!r} is missing or not a string")
        if attrs["mode"] not in (ANTIALIAS, NO_ANTIALIAS):
            raise FormatError(f"{where}: attribute 'mode' is {attrs['mode']!r}, expected {ANTIALIAS!r} or {NO_ANTIALIAS!r}")
        spec = ContinuousOperatorSpec.parse(attrs["operator"])
        raw: dict[str, np.ndarray] = {}
        for name in list(_SHAPES) + ["bands/irrep", "bands/casimir", "bands/dimension", "bands/copies", "bands/kept"]:
            if name not in f or not isinstance(f[name], h5py.Dataset):
                raise FormatError(f"{where}: missing dataset {name!r}")
            node = f[name]
            raw[name] = (np.asarray(node.asstr()[()], dtype=object) if h5py.check_string_dtype(node.dtype) is not None
                         else node[()])
    m, dim = spec.subgroup_order, spec.group.dimension
    bands_irrep = raw.pop("bands/irrep")
    table = {n: raw.pop(f"bands/{n}") for n in ("casimir", "dimension", "copies", "kept")}
    q = int(sum((int(d) // int(c)) ** 2 for d, c in zip(table["dimension"], table["copies"])))
    r = int(table["kept"].sum()) if attrs["mode"] == ANTIALIAS else dim
    k = 2 if spec.group.family in ("SO2", "O2") else 3
    for name, (dtype, shape) in _SHAPES.items():
        a = raw[name]
        if dtype is not None and a.dtype != np.dtype(dtype):
            raise FormatError(f"{where}: dataset {name!r} has dtype {a.dtype}, expected {np.dtype(dtype)}")
        if a.shape != shape(m, dim, r, q, k):
            raise FormatError(f"{where}: dataset {name!r} has shape {a.shape}, expected {shape(m, dim, r, q, k)} for {spec}")
        if dtype == "<f8" and not np.isfinite(a).all():
            raise FormatError(f"{where}: dataset {name!r} holds NaN or infinite values")
    if int(table["dimension"].sum()) != dim:
        raise FormatError(f"{where}: the band dimensions sum to {int(table['dimension'].sum())}, not dim = {dim}")
    cayley = raw["subgroup_cayley"]
    if cayley.min() < 0 or cayley.max() >= m:
        raise FormatError(f"{where}: dataset 'subgroup_cayley' has indices outside 0..{m - 1}")
    bands_arr = np.empty(len(bands_irrep), dtype=BAND_DTYPE)
    bands_arr["irrep"] = bands_irrep
    for n, v in table.items():
        bands_arr[n] = v
    actual = _checksum(raw, bands_arr)
    if actual != attrs["checksum"]:
        raise FormatError(f"{where}: checksum mismatch: the arrays were changed or damaged")
    bands = tuple(IrrepBand(tuple(json.loads(i)), float(c), int(d), int(kk))
                  for i, c, d, kk in zip(bands_irrep, table["casimir"], table["dimension"], table["kept"]))
    sg_id = json.loads(attrs["escnn_subgroup_id"])
    checks = [Check(c["name"], float(c["error"]), float(c["tolerance"]), c.get("detail", "")) for c in json.loads(attrs["checks"])]
    return ContinuousOperator(spec, attrs["mode"], raw, bands, tuple(int(c) for c in table["copies"]),
                              tuple(sg_id) if isinstance(sg_id, list) else sg_id, int(attrs.get("subgroup_identity", 0)),
                              checks, path)


# ------------------------------------------------------------------------------------------------
# Subgroups.


def continuous_subgroups(group: ContinuousGroupSpec | str, max_n: int = 12, rank_tol: float = RANK_TOL) -> list[dict]:
    """The finite subgroups of G that gscli samples on (C_N, D_N up to ``max_n``), with their orders and,
    for the group's L, the rank of sampling on them and whether an operator can be built.

    Each row: ``subgroup``, ``order``, ``escnn_id``, ``rank``, ``mode`` (``antialias``,
    ``no-antialias`` or ``rank-deficient``).
    """
    from gscli.continuous import _escnn
    from gscli.specs import SubgroupSpec

    group = group if isinstance(group, ContinuousGroupSpec) else ContinuousGroupSpec.parse(group)
    names = {
        "SO2": [f"C{n}" for n in range(1, max_n + 1)],
        "O2": [f"C{n}" for n in range(1, max_n + 1)] + [f"D{n}" for n in range(1, max_n + 1)],
        "SO3": [f"C{n}" for n in range(1, max_n + 1)] + [f"D{n}" for n in range(2, max_n + 1)] + ["O", "I"],
        "O3": ["O", "Oh", "I", "Ih"],
    }[group.family]
    rows = []
    for name in names:
        spec = ContinuousOperatorSpec(group, SubgroupSpec.parse(name))
        works, rank = _works(spec, rank_tol)
        m, dim = spec.subgroup_order, group.dimension
        mode = "rank-deficient" if not works else (ANTIALIAS if m <= dim else NO_ANTIALIAS)
        rows.append({"subgroup": name, "order": m, "escnn_id": repr(_escnn.escnn_subgroup_id(spec)), "rank": rank,
                     "mode": mode})
    return rows
