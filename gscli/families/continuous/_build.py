"""Build, write and read continuous-group operators (``SO3_L3>O``): the continuous family's build side.

File layout (``kind = "continuous"``, the container of every gscli operator file: header, whole-file
digest and dataset checksum, :mod:`gscli.fileformat`; schema and validator:
:data:`gscli.filekinds.FILE_KINDS` ``["continuous"]``)::

    /sampling          (m, dim)  float64  S: coefficients -> values at H's elements
    /downsample        (m, dim)  float64  D = S P
    /upsample          (dim, m)  float64  U (S U = I when m <= dim; U S = I when m > dim)
    /antialias         (dim, dim) float64 P, orthogonal projector onto the kept space V (I when m > dim)
    /basis             (dim, r)  float64  B, orthonormal basis of V, r = min(m, dim)
    /irrep_images      (m, sum d^2) float64  rho_psi(h_i) for every irrep psi, flattened, irrep after irrep
    /element_matrices  (m, k, k) float64  H's elements included in G, acting on R^2 or R^3
    /subgroup_cayley   (m, m)    int64    H's table in escnn's order (lambda_H(h_a) e_b = e_{h_a h_b})
    /element_names     (m,)      utf-8    escnn's names of H's elements, in escnn's order
    /bands/irrep       (k,)      utf-8    escnn's id of each irrep (JSON), by ascending Casimir
    /bands/casimir, /bands/dimension, /bands/copies, /bands/kept   (k,)  float64, int64, int64, int64

Root attributes: ``format``, ``format_version``, ``kind`` (``"continuous"``), ``operator``
(e.g. ``SO3_L3>O``), ``mode`` (``antialias`` or ``no-antialias``), ``escnn_subgroup_id`` (JSON),
``subgroup_identity``, ``sampling_convention``, ``solver``, ``solver_rank_tol``, ``checks`` (JSON),
producer versions and ``checksum``. :func:`gscli.fileformat.read_operator` reads and verifies it like
every operator file; :func:`read_continuous` is that reader, returning a :class:`ContinuousOperator`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gscli import __version__
from gscli._memory import available_memory
from gscli.checks import Check
from gscli.errors import CheckError, FormatError, SizeError, SpecError
from gscli.families.continuous._checks import Layout, check_continuous
from gscli.families.continuous._solver import ANTIALIAS, NO_ANTIALIAS, IrrepBand, RankDeficient, operators, order_bands, walk
from gscli.fileformat import OperatorData, read_operator, write_operator
from gscli.solver import RANK_TOL
from gscli.specs import (
    MAX_CONTINUOUS_DIM,
    ContinuousGroupSpec,
    ContinuousOperatorSpec,
    SubgroupSpec,
    band_dimension,
    estimate_continuous_memory,
)

__all__ = ["ContinuousOperator", "ContinuousBuildResult", "check_memory", "build_continuous", "write_continuous", "read_continuous", "smallest_band_limit",
           "continuous_subgroups", "KIND", "SOLVER", "SAMPLING_CONVENTION"]

KIND = "continuous"
SOLVER = "casimir-bands/1"
SAMPLING_CONVENTION = ("f(g) = sum_psi sqrt(d_psi) sum_j sum_i rho_psi(g)[i, j] c[psi, j, i] "
                       "(escnn FourierPointwise(normalize=False); normalize=True divides by sqrt(dim))")


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
    attrs: dict[str, Any] = field(default_factory=dict)  #: the file's attributes (empty for one built here)

    # what the build pipeline (gscli.build) asks of a built operator (gscli.families.Built)
    selection = ""  #: no choice was made: the spec names the subgroup
    suffix = ""
    status_key = None

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

    def datasets(self) -> dict[str, np.ndarray]:
        """The file's datasets (:data:`gscli.filekinds.CONTINUOUS_DATASETS`)."""
        out = dict(self.arrays)
        out["bands/irrep"] = np.asarray([json.dumps(list(b.irrep)) for b in self.bands], dtype=object)
        out["bands/casimir"] = np.asarray([b.casimir for b in self.bands], dtype="<f8")
        out["bands/dimension"] = np.asarray([b.dimension for b in self.bands], dtype="<i8")
        out["bands/copies"] = np.asarray(self.copies, dtype="<i8")
        out["bands/kept"] = np.asarray([b.kept for b in self.bands], dtype="<i8")
        return out

    def attributes(self) -> dict[str, Any]:
        """The file's attributes, less those the container adds (format, versions of numpy and h5py, checksum)."""
        return {
            "kind": KIND, "operator": str(self.spec), "mode": self.mode,
            "escnn_subgroup_id": json.dumps(self.subgroup_id), "subgroup_identity": int(self.subgroup_identity),
            "sampling_convention": SAMPLING_CONVENTION, "solver": SOLVER, "solver_rank_tol": RANK_TOL,
            "checks": json.dumps([c.as_dict() for c in self.checks]), "gscli_version": __version__,
            "escnn_version": _escnn_version(),
        }

    @classmethod
    def from_data(cls, data: OperatorData) -> ContinuousOperator:
        """The operator a verified file of kind ``continuous`` holds (:func:`gscli.fileformat.read_operator`)."""
        where = str(data.path or "operator")
        if data.kind != KIND:
            raise FormatError(f"{where}: holds an operator of kind {data.kind!r}, not {KIND!r}")
        a = data.arrays
        bands = tuple(IrrepBand(tuple(json.loads(i)), float(c), int(d), int(k))
                      for i, c, d, k in zip(a["bands/irrep"], a["bands/casimir"], a["bands/dimension"], a["bands/kept"]))
        arrays = {name: a[name] for name in ("sampling", "downsample", "upsample", "antialias", "basis", "irrep_images",
                                              "element_matrices", "subgroup_cayley", "element_names")}
        sg_id = json.loads(data.attrs["escnn_subgroup_id"])
        checks = [Check(c["name"], float(c["error"]), float(c["tolerance"]), c.get("detail", "")) for c in data.checks]
        return cls(data.spec, data.attrs["mode"], arrays, bands, tuple(int(c) for c in a["bands/copies"]),
                   _as_id(sg_id), int(data.attrs["subgroup_identity"]), checks, data.path, dict(data.attrs))

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


@dataclass
class ContinuousBuildResult:
    """What happened to one continuous-group operator: ``status`` is ``built``, ``rebuilt`` or ``up-to-date``."""

    spec: ContinuousOperatorSpec
    path: Path
    status: str
    seconds: float
    checks: list[dict] = field(default_factory=list)
    checksum: str = ""
    mode: str = ANTIALIAS
    bands: list[dict] = field(default_factory=list)
    selection: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "operator": str(self.spec),
            "kind": KIND,
            "file": str(self.path),
            "status": self.status,
            "rate": self.spec.rate,
            "group": str(self.spec.group),
            "dimension": self.spec.group.dimension,
            "subgroup": str(self.spec.subgroup),
            "subgroup_order": self.spec.subgroup_order,
            "escnn_subgroup_id": self.spec.escnn_subgroup_id,
            "mode": self.mode,
            "bands": self.bands,
            "seconds": round(self.seconds, 4),
            "checksum": self.checksum,
            "checks": self.checks,
        }


def _walk_for(smp: Any, rank_tol: float) -> Any:
    widths = [d * c for d, c in zip(smp.sizes, smp.copies)]
    return walk(smp.sampling, order_bands(smp.irreps, smp.casimirs, smp.offsets, widths), rank_tol)


def _works(spec: ContinuousOperatorSpec, rank_tol: float) -> tuple[bool, int]:
    from gscli import _escnn_continuous as _escnn

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
        if L >= spec.subgroup_order:  # C_N, D_N need 2L + 1 >= N or so; O, I a few degrees: none needs L >= |H|
            return None
        L += 1
    return None


def check_memory(spec: ContinuousOperatorSpec) -> None:
    need = estimate_continuous_memory(spec.group.dimension, spec.subgroup_order)
    free = available_memory()
    if free is not None and need > free:
        raise SizeError(f"building {spec} needs about {need / 2**30:.1f} GiB of memory (dense {spec.group.dimension}x"
                        f"{spec.group.dimension} float64 operators and their checks), and only {free / 2**30:.1f} GiB "
                        f"is available; free memory or choose a smaller L")


def build_continuous(spec: ContinuousOperatorSpec | str, rank_tol: float = RANK_TOL, refuse: bool = True) -> ContinuousOperator:
    """Build and check the operator sampling ``spec.group``'s band-limited fields on ``spec.subgroup``.

    ``refuse=False`` returns an operator whose checks failed (the build pipeline refuses it itself,
    writing nothing, with the store's message).

    Raises
    ------
    SpecError
        H is not a subgroup escnn builds in G, or sampling on H is rank-deficient at this L (the
        message names the smallest L that works).
    CheckError
        A guarantee failed (nothing to write).
    """
    from gscli import _escnn_continuous as _escnn

    spec = spec if isinstance(spec, ContinuousOperatorSpec) else ContinuousOperatorSpec.parse(spec)
    check_memory(spec)
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
    if bad and refuse:
        raise CheckError(f"{spec}: " + "; ".join(str(c) for c in bad) + "; nothing was written")
    return op


# ------------------------------------------------------------------------------------------------
# The file.


def write_continuous(op: ContinuousOperator, path: str | os.PathLike) -> str:
    """Write ``op`` atomically (temporary file, read back and verified, then renamed); return its checksum.

    The container's writer (:func:`gscli.fileformat.write_operator`) with the kind's schema; the
    store rules (lock, up-to-date check) are :func:`gscli.build.build_spec`'s.
    """
    return write_operator(Path(path), op.datasets(), op.attributes())


def read_continuous(path: str | os.PathLike) -> ContinuousOperator:
    """Read and verify a continuous-group operator file: :func:`gscli.fileformat.read_operator`, as a
    :class:`ContinuousOperator`.

    Raises
    ------
    FormatError
        Naming the file and the problem (a file of another kind included); no other exception
        escapes for a bad file.
    """
    return ContinuousOperator.from_data(read_operator(path))


def _as_id(sg_id: Any) -> Any:
    return tuple(_as_id(v) for v in sg_id) if isinstance(sg_id, list) else sg_id


def _escnn_version() -> str:
    from gscli._escnn_continuous import escnn_version

    return escnn_version()


# ------------------------------------------------------------------------------------------------
# Subgroups.


def continuous_subgroups(group: ContinuousGroupSpec | str, max_n: int = 12, rank_tol: float = RANK_TOL) -> list[dict]:
    """The finite subgroups of G that gscli samples on (C_N, D_N up to ``max_n``), with their orders and,
    for the group's L, the rank of sampling on them and whether an operator can be built.

    Each row: ``subgroup``, ``order``, ``escnn_id``, ``rank``, ``mode`` (``antialias``,
    ``no-antialias`` or ``rank-deficient``), and for a rank-deficient one ``smallest_L``, the smallest
    band limit at which it works (None when none up to the size limit does).
    """
    from gscli import _escnn_continuous as _escnn

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
        row = {"subgroup": name, "order": m, "escnn_id": repr(_escnn.escnn_subgroup_id(spec)), "rank": rank, "mode": mode}
        if not works:
            row["smallest_L"] = smallest_band_limit(spec, rank_tol)
        rows.append(row)
    return rows
