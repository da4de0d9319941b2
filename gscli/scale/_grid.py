"""Grid operators: resolution change on periodic grids as an operator file (docs/scale.md).

A *grid operator* ``Z<N...>>Z<M...>`` is the group-operator idea on the translation group: the
periodic grid Z_N is the cyclic group C_N, and changing an image's resolution with an ideal
low-pass is anti-aliased sampling. Its file (``kind = "grid"``, see :mod:`gscli.fileformat`) holds,
per axis, the downscaling D_{N→M}, the upscaling U_{M→N} = (N/M) Dᵀ, the projector U·D onto the
kept band and the kept frequencies; the d-dimensional operator is their Kronecker product.

Everything a file must satisfy is measured by :func:`check_grid` from the arrays alone, before a
file is written (:func:`build_grid`) and again by ``gscli eval`` (:func:`evaluate_grid`):

========================  =====================================================================
check                     what is measured (largest absolute entry, max over the axes)
========================  =====================================================================
``band``                  stored frequencies = {-h..h}, h = ⌊(M-1)/2⌋ (count of differences)
``realness``              max |Im| of the FFT truncation to the stored frequencies (a band
                          closed under k → -k gives a real operator; a one-sided one does not)
``fft_reference``         D − (numpy FFT, keep the stored frequencies, inverse FFT at size M)
``closed_form``           D − (1/N)[1 + 2 Σ_{k=1}^{h} cos 2πk(i/M − j/N)]
``upsample_adjoint``      U − (N/M) Dᵀ
``projector_stored``      stored projector − U·D
``projector_symmetric``   P − Pᵀ, P = U·D
``projector_idempotent``  P² − P
``projector_trace``       |tr P − (2h+1)|
``downsample_upsample``   D·U − I for odd M; D·U − (I − Q) for even M, Q the Nyquist projector
                          Q[i, j] = (−1)^{i+j}/M
``semigroup``             D_{L→M} D_{N→L} − D and U_{L→N} U_{M→L} − U for intermediate sizes L
``sampled_projector``     (M | N) D − P[::N/M]: take every R-th sample of the low-passed signal
``group_operator``        (M | N) gscli's C_N → C_M operator (FFT reference) − D − the cosine
                          at M/2: (2/N)(−1)^i cos(π j/R) for even M (half that when M = N),
                          nothing for odd M
``resample_float64``      :func:`gscli.scale.resample` (rfftn/irfftn) vs the Kronecker product
                          of the stored D (down) and U (up), relative, float64
``resample_float32``      the same in float32, relative
========================  =====================================================================
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from gscli import __version__
from gscli.checks import Check, failed, fft_lowpass_downsample, maxabs
from gscli.errors import CheckError, FormatError, StoreError
from gscli.fileformat import OperatorData, read_operator, remove_stale_temporaries, write_operator
from gscli.scale._resample import band_limit, resample_matrix
from gscli.specs import GridOperatorSpec
from gscli.store import check_replaceable, operator_path, store_for_writing, write_lock

__all__ = [
    "GRID_TOLERANCES",
    "CONSTRUCTION",
    "GridOperator",
    "GridBuildResult",
    "nyquist_projector",
    "fft_truncation",
    "intermediate_sizes",
    "check_axis",
    "check_grid",
    "build_grid_operator",
    "build_grid",
    "summarize_grid",
    "evaluate_grid",
]

#: How the arrays are computed: the closed form of docs/scale.md, per axis.
CONSTRUCTION = "closed-form/1"

#: Tolerances of the grid checks (float64 unless named float32). Errors are the largest absolute
#: entry of a difference (``resample_*``: divided by the largest entry of the reference).
GRID_TOLERANCES = {
    "band": 0.0,
    "realness": 1e-12,
    "fft_reference": 1e-12,
    "closed_form": 1e-12,
    "upsample_adjoint": 1e-12,
    "projector_stored": 1e-12,
    "projector_symmetric": 1e-12,
    "projector_idempotent": 1e-12,
    "projector_trace": 1e-9,
    "downsample_upsample": 1e-12,
    "semigroup": 1e-12,
    "sampled_projector": 1e-12,
    "group_operator": 1e-12,
    "resample_float64": 1e-12,
    "resample_float32": 1e-5,
}

_DETAILS = {
    "band": "stored kept frequencies vs {-h..h}, h = floor((M-1)/2): entries that differ",
    "realness": "max |imaginary part| of the FFT truncation to the stored frequencies",
    "fft_reference": "D vs numpy FFT -> keep the stored frequencies -> inverse FFT at size M",
    "closed_form": "D vs (1/N)[1 + 2 sum_k cos 2pi k (i/M - j/N)]",
    "upsample_adjoint": "U vs (N/M) D^T",
    "projector_stored": "stored projector vs U D",
    "projector_symmetric": "P - P^T for P = U D",
    "projector_idempotent": "P^2 - P for P = U D",
    "projector_trace": "|tr(U D) - (2h+1)|, the band size",
    "downsample_upsample": "D U - I (odd M), D U - (I - Nyquist projector) (even M)",
    "semigroup": "D_(L->M) D_(N->L) - D and U_(L->N) U_(M->L) - U",
    "sampled_projector": "D - (U D)[::R] for R = N/M (divisors only)",
    "group_operator": "C_N->C_M group operator - D - (2/N)(-1)^i cos(pi j/R) (even M; odd M: no term)",
    "resample_float64": "gscli.scale.resample (rfftn/irfftn) vs the stored matrices, down and up, relative",
    "resample_float32": "the same in float32, relative",
}


# --------------------------------------------------------------------------------------------------
# References, computed independently of the closed form.


def nyquist_projector(m: int) -> np.ndarray:
    """The orthogonal projector onto the Nyquist mode (−1)^i of Z_m: (−1)^{i+j}/m for even m, 0 for odd m."""
    if m % 2:
        return np.zeros((m, m), dtype=np.float64)
    sign = (-1.0) ** np.arange(m, dtype=np.float64)
    return np.outer(sign, sign) / m


def fft_truncation(n: int, m: int, frequencies: np.ndarray) -> np.ndarray:
    """The complex (m, n) operator: numpy's forward-normalised FFT at size n, keep ``frequencies``
    (signed integers), place them on a size-m spectrum, inverse FFT at size m.

    For the odd band {−h..h} it is real and equals :func:`gscli.scale.resample_matrix`; a band
    not closed under k → −k gives a complex operator.
    """
    spectra = np.fft.fft(np.eye(n), axis=0) / n  # column j: forward-normalised spectrum of e_j
    kept = np.zeros((m, n), dtype=np.complex128)
    for k in np.asarray(frequencies, dtype=np.int64):
        kept[int(k) % m] += spectra[int(k) % n]
    return np.fft.ifft(kept, axis=0) * m


def intermediate_sizes(n: int, m: int) -> list[int]:
    """Sizes L with m <= L <= n used for the semigroup check: an odd and an even one near the middle (or all, if few)."""
    sizes = list(range(m, n + 1))
    if len(sizes) <= 2:
        return sizes
    middle = (n + m) // 2
    chosen = {middle}
    neighbour = middle + 1 if middle + 1 <= n else middle - 1
    chosen.add(neighbour)
    return sorted(chosen)


# --------------------------------------------------------------------------------------------------
# Checks.


def check_axis(n: int, m: int, d: np.ndarray, u: np.ndarray, projector: np.ndarray, frequencies: np.ndarray) -> dict[str, float]:
    """Every float64 identity of one axis (N = ``n`` → M = ``m``): check name → error.

    Parameters
    ----------
    d, u, projector : ndarray
        D (m, n), U (n, m) and the stored projector (n, n).
    frequencies : ndarray of int
        The stored kept frequencies.
    """
    d, u, projector = (np.asarray(a, dtype=np.float64) for a in (d, u, projector))
    frequencies = np.asarray(frequencies, dtype=np.int64)
    h = band_limit(m)
    ideal = np.arange(-h, h + 1)
    band_error = float(np.count_nonzero(np.sort(frequencies) != ideal)) if frequencies.shape == ideal.shape else float(
        abs(len(frequencies) - len(ideal)) + np.count_nonzero(~np.isin(frequencies, ideal)))
    truncation = fft_truncation(n, m, frequencies)
    p = u @ d
    errors = {
        "band": band_error,
        "realness": maxabs(truncation.imag),
        "fft_reference": maxabs(d - truncation.real),
        "closed_form": maxabs(d - resample_matrix(n, m)),
        "upsample_adjoint": maxabs(u - (n / m) * d.T),
        "projector_stored": maxabs(projector - p),
        "projector_symmetric": maxabs(p - p.T),
        "projector_idempotent": maxabs(p @ p - p),
        "projector_trace": abs(float(np.trace(p)) - (2 * h + 1)),
        "downsample_upsample": maxabs(d @ u - (np.eye(m) - nyquist_projector(m))),
        "semigroup": max(max(maxabs(resample_matrix(size, m) @ resample_matrix(n, size) - d),
                             maxabs(resample_matrix(size, n) @ resample_matrix(m, size) - u))
                         for size in intermediate_sizes(n, m)),
    }
    if n % m == 0:
        rate = n // m
        errors["sampled_projector"] = maxabs(d - p[::rate, :])
        cosine = np.zeros((m, n))
        if m % 2 == 0:  # the bins +-M/2 are two bins of Z_N, or one when M = N
            cosine = ((2.0 if rate > 1 else 1.0) / n) * np.outer((-1.0) ** np.arange(m), np.cos(np.pi * np.arange(n) / rate))
        errors["group_operator"] = maxabs(fft_lowpass_downsample(n, rate) - d - cosine)
    return errors


def _resample_checks(spec: GridOperatorSpec, downs: list[np.ndarray], ups: list[np.ndarray], seed: int,
                     float32: bool) -> list[Check]:
    """:func:`gscli.scale.resample` against the Kronecker product of the stored per-axis matrices."""
    import torch

    from gscli.scale._resample import resample

    rng = np.random.default_rng(seed)
    fine, coarse = spec.fine.shape, spec.coarse.shape
    letters = "ijk"[: spec.dims]

    def apply(matrices: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        out = x
        for axis, matrix in enumerate(matrices):
            out = np.moveaxis(np.tensordot(matrix, out, axes=([1], [2 + axis])), 0, 2 + axis)
        return out

    x = rng.standard_normal((2, 3, *fine)).astype(np.float32).astype(np.float64)
    z = rng.standard_normal((2, 3, *coarse)).astype(np.float32).astype(np.float64)
    expected_down, expected_up = apply(downs, x), apply(ups, z)
    checks = []
    for dtype, name in ((torch.float64, "resample_float64"), (torch.float32, "resample_float32"))[: 2 if float32 else 1]:
        # the FFT path, computed independently of the file's matrices (the dense path is those matrices)
        down = resample(torch.from_numpy(x).to(dtype), coarse, method="fft").double().numpy()
        up = resample(torch.from_numpy(z).to(dtype), fine, method="fft").double().numpy()
        error = max(maxabs(down - expected_down) / max(maxabs(expected_down), 1e-300),
                    maxabs(up - expected_up) / max(maxabs(expected_up), 1e-300))
        checks.append(Check(name, error, GRID_TOLERANCES[name],
                            f"{_DETAILS[name]}; (2, 3, {'x'.join(map(str, fine))}) <-> ({'x'.join(map(str, coarse))}), "
                            f"axes {letters}"))
    return checks


def check_grid(spec: GridOperatorSpec, arrays: dict[str, np.ndarray], seed: int = 0, float32: bool = True) -> list[Check]:
    """Measure every identity of a grid operator from its arrays (see the module docstring).

    Parameters
    ----------
    spec : GridOperatorSpec
    arrays : dict
        ``axis<a>/downsample``, ``axis<a>/upsample``, ``axis<a>/projector``, ``axis<a>/frequencies``.
    seed : int
        Seed of the random inputs of the ``resample_*`` checks.
    float32 : bool
        Also measure ``resample_float32`` (``gscli eval`` does; ``gscli build`` checks in float64).

    Returns
    -------
    list of Check
        One per identity, the error the largest over the axes (the detail names each axis's).
    """
    per_axis: list[dict[str, float]] = []
    for axis, (n, m) in enumerate(spec.axes):
        per_axis.append(check_axis(n, m, *(arrays[f"axis{axis}/{f}"] for f in ("downsample", "upsample", "projector", "frequencies"))))
    checks = []
    for name, tolerance in GRID_TOLERANCES.items():
        if name.startswith("resample_"):
            continue
        values = [(axis, errors[name]) for axis, errors in enumerate(per_axis) if name in errors]
        if not values:
            continue
        worst = max(v for _, v in values)
        by_axis = ", ".join(f"axis {axis}: {v:.2g}" for axis, v in values) if len(per_axis) > 1 else ""
        checks.append(Check(name, worst, tolerance, _DETAILS[name] + (f" ({by_axis})" if by_axis else "")))
    downs = [np.asarray(arrays[f"axis{a}/downsample"], dtype=np.float64) for a in range(spec.dims)]
    ups = [np.asarray(arrays[f"axis{a}/upsample"], dtype=np.float64) for a in range(spec.dims)]
    checks += _resample_checks(spec, downs, ups, seed, float32)
    return checks


# --------------------------------------------------------------------------------------------------
# Build.


@dataclass(frozen=True, eq=False)
class GridOperator:
    """A computed, checked grid operator, ready to be written."""

    spec: GridOperatorSpec
    arrays: dict[str, np.ndarray]
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return not failed(list(self.checks))

    def attrs(self) -> dict[str, Any]:
        return {
            "kind": "grid",
            "operator": str(self.spec),
            "dims": self.spec.dims,
            "construction": CONSTRUCTION,
            "checks": json.dumps([c.as_dict() for c in self.checks]),
            "gscli_version": __version__,
        }


def grid_arrays(spec: GridOperatorSpec) -> dict[str, np.ndarray]:
    """The datasets of a grid-operator file, from the closed form (float64)."""
    arrays: dict[str, np.ndarray] = {}
    for axis, (n, m) in enumerate(spec.axes):
        d = resample_matrix(n, m)
        u = resample_matrix(m, n)
        h = band_limit(m)
        arrays[f"axis{axis}/downsample"] = d
        arrays[f"axis{axis}/upsample"] = u
        arrays[f"axis{axis}/projector"] = u @ d
        arrays[f"axis{axis}/frequencies"] = np.arange(-h, h + 1, dtype=np.int64)
    return arrays


def build_grid_operator(spec: GridOperatorSpec | str) -> GridOperator:
    """Compute a grid operator in float64 and measure every check.

    >>> op = build_grid_operator("Z12>Z8")
    >>> op.ok, op.arrays["axis0/downsample"].shape, op.arrays["axis0/frequencies"].tolist()
    (True, (8, 12), [-3, -2, -1, 0, 1, 2, 3])
    """
    spec = GridOperatorSpec.parse(spec) if isinstance(spec, str) else spec
    arrays = grid_arrays(spec)
    return GridOperator(spec, arrays, tuple(check_grid(spec, arrays, float32=False)))


@dataclass
class GridBuildResult:
    """What happened to one grid operator: ``status`` is ``built``, ``rebuilt`` or ``up-to-date``."""

    spec: GridOperatorSpec
    path: Path
    status: str
    seconds: float
    checks: list[dict] = field(default_factory=list)
    checksum: str = ""
    selection: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "operator": str(self.spec),
            "kind": "grid",
            "file": str(self.path),
            "status": self.status,
            "rate": self.spec.rate,
            "fine": list(self.spec.fine.shape),
            "coarse": list(self.spec.coarse.shape),
            "seconds": round(self.seconds, 4),
            "checksum": self.checksum,
            "checks": self.checks,
        }


def _file_status(path: Path, spec: GridOperatorSpec) -> tuple[OperatorData | None, str]:
    try:
        data = read_operator(path)
    except FormatError as exc:
        return None, str(exc)
    if data.kind != "grid" or data.attrs.get("operator") != str(spec):
        return None, f"{path} holds {data.spec}, not {spec}"
    if data.attrs.get("construction") != CONSTRUCTION:
        return None, f"{path} was made by {data.attrs.get('construction')!r}, not {CONSTRUCTION!r}"
    return data, ""


def build_grid(spec: GridOperatorSpec | str, out: Path | str = "operators", force: bool = False) -> GridBuildResult:
    """Build one grid operator into the folder ``out`` (``Z<N>-Z<M>.h5``) and return what happened.

    The same store rules as :func:`gscli.build.build`: an up-to-date file is kept unless ``force``,
    another file of that name is an error unless ``force``, writers take the store's lock, the file
    is written atomically and verified by reading it back, and a failed check writes nothing
    (:class:`~gscli.errors.CheckError`).
    """
    start = time.perf_counter()
    spec = GridOperatorSpec.parse(spec) if isinstance(spec, str) else spec
    with store_for_writing(out) as folder:
        remove_stale_temporaries(folder)
        path = operator_path(spec, folder)
        with write_lock(path):
            check_replaceable(path)
            existed = path.exists()
            if existed and not force:
                data, why = _file_status(path, spec)
                if data is not None:
                    return GridBuildResult(spec, path, "up-to-date", time.perf_counter() - start, data.checks,
                                           data.attrs["checksum"])
                raise StoreError(f"{path} exists and is not an up-to-date {spec} operator ({why}); pass --force to replace it")
            op = build_grid_operator(spec)
            bad = failed(list(op.checks))
            if bad:
                raise CheckError(f"{spec}: check failed, nothing written: " + "; ".join(str(c) for c in bad))
            checksum = write_operator(path, op.arrays, op.attrs())
    return GridBuildResult(spec, path, "rebuilt" if existed else "built", time.perf_counter() - start,
                           [c.as_dict() for c in op.checks], checksum)


# --------------------------------------------------------------------------------------------------
# Inspect.


def _read_grid(source: str | os.PathLike | OperatorData) -> OperatorData:
    """A verified grid-operator file (a damaged one raises :class:`FormatError`)."""
    data = source if isinstance(source, OperatorData) else read_operator(source)
    if data.kind != "grid":
        where = str(data.path) if data.path is not None else "operator"
        raise FormatError(f"{where}: holds a {data.kind} operator ({data.spec}), not a grid operator")
    return data


def _axis_summary(n: int, m: int, d: np.ndarray, u: np.ndarray, frequencies: np.ndarray) -> dict[str, Any]:
    sigma_d = np.linalg.svd(d, compute_uv=False)
    sigma_u = np.linalg.svd(u, compute_uv=False)
    rank = int(np.count_nonzero(sigma_d > 1e-10 * max(sigma_d.max(initial=0.0), 1e-300)))
    ratio = Fraction(n, m)
    return {
        "fine": n,
        "coarse": m,
        "ratio": str(ratio),
        "divides": n % m == 0,
        "band_limit": band_limit(m),
        "kept_frequencies": [int(k) for k in frequencies],
        "kept": len(frequencies),
        "dropped_nyquist": m % 2 == 0,
        "conditioning": {
            "downsample_norm": float(sigma_d.max(initial=0.0)),
            "upsample_norm": float(sigma_u.max(initial=0.0)),
            "rank": rank,
            "downsample_sigma_min_on_band": float(sigma_d[:rank].min()) if rank else float("nan"),
            "band_condition": float(sigma_d[0] / sigma_d[rank - 1]) if rank else float("nan"),
        },
    }


def summarize_grid(source: str | os.PathLike | OperatorData) -> dict[str, Any]:
    """Summary of a grid-operator file as a JSON-serialisable dict (the file is verified first).

    Keys: ``file``, ``kind`` (``"grid"``), ``operator``, ``dims``, ``fine``, ``coarse`` (sizes per
    axis), ``rate``, ``axes`` (per axis: sizes, ratio, whether M divides N, band limit h, the kept
    frequencies, whether the Nyquist bin is dropped, and the conditioning: ||D||_2 = sqrt(M/N),
    ||U||_2 = sqrt(N/M), rank 2h+1, condition on the band 1), ``provenance``, ``checksum`` and
    ``stored_checks`` (what the build measured; ``gscli eval`` re-measures).
    """
    data = _read_grid(source)
    spec = data.spec
    assert isinstance(spec, GridOperatorSpec)
    a, attrs = data.arrays, data.attrs
    axes = [_axis_summary(n, m, a[f"axis{i}/downsample"], a[f"axis{i}/upsample"], a[f"axis{i}/frequencies"])
            for i, (n, m) in enumerate(spec.axes)]
    stored = data.checks
    keys = ("format", "format_version", "construction", "gscli_version", "numpy_version", "h5py_version")
    return {
        "file": str(data.path) if data.path is not None else None,
        "kind": "grid",
        "operator": str(spec),
        "dims": spec.dims,
        "fine": list(spec.fine.shape),
        "coarse": list(spec.coarse.shape),
        "rate": spec.rate,
        "axes": axes,
        "provenance": {k: attrs[k] for k in keys if k in attrs},
        "checksum": {"stored": attrs["checksum"], "status": "verified" if data.verified else "unverified"},
        "stored_checks": {
            "count": len(stored),
            "passed": sum(1 for c in stored if c.get("passed")),
            "failed": [c.get("name") for c in stored if not c.get("passed")],
            "checks": stored,
        },
    }


# --------------------------------------------------------------------------------------------------
# Eval.


def _images(spec: GridOperatorSpec) -> tuple[np.ndarray, str]:
    """Real images at the fine size, (count, 1, *fine): matplotlib's sample images (2-D), their rows
    (1-D), or volumes whose slices are an image shifted by one pixel per slice (3-D). Sizes above
    128 wrap the 128x128 images periodically."""
    from gscli.evaluate import sample_images

    fine = spec.fine.shape
    base, names = sample_images(min(max(fine), 128))
    reps = -(-max(fine) // base.shape[-1])
    images = np.tile(base, (1, reps, reps))
    if spec.dims == 1:
        x = images[:, :, : fine[0]].reshape(-1, fine[0])[:, None, :]
        return x, f"{x.shape[0]} rows of {len(names)} sample images"
    if spec.dims == 2:
        return images[:, None, : fine[0], : fine[1]], f"{len(names)} sample images"
    planes = images[:, : fine[1], : fine[2]]
    volumes = np.stack([np.roll(planes, s, axis=-1) for s in range(fine[0])], axis=1)
    return volumes[:, None], f"{len(names)} sample images stacked into volumes"


def _aliasing(y: np.ndarray, x: np.ndarray, spec: GridOperatorSpec) -> float:
    """Share of the output's energy that is not the input's kept band: ||Y − X_B||² / ||Y||², per sample, mean."""
    dims = tuple(range(2, 2 + spec.dims))
    big_x = np.fft.fftn(x, axes=dims, norm="forward")
    big_y = np.fft.fftn(y, axes=dims, norm="forward")
    target = np.zeros_like(big_y)
    index_in, index_out = [], []
    for n, m in spec.axes:
        h = band_limit(m)
        k = np.arange(-h, h + 1)
        index_in.append(k % n)
        index_out.append(k % m)
    target[(slice(None), slice(None), *np.ix_(*index_out))] = big_x[(slice(None), slice(None), *np.ix_(*index_in))]
    energy = np.sum(np.abs(big_y) ** 2, axis=dims)
    return float(np.mean(np.sum(np.abs(big_y - target) ** 2, axis=dims) / np.maximum(energy, 1e-300)))


def _nearest(n: int, m: int) -> np.ndarray:
    """Plain subsampling N → M: sample i takes input ⌊i N / M⌋ (every R-th sample when M | N)."""
    s = np.zeros((m, n))
    s[np.arange(m), (np.arange(m) * n) // m] = 1.0
    return s


def grid_signal_experiment(data: OperatorData) -> dict[str, Any]:
    """Plain subsampling vs the operator on real images: aliasing energy and reconstruction error.

    Plain subsampling takes input ⌊iN/M⌋ for output i (every R-th sample when M | N). Aliasing: the
    share of the output's energy that is not the input's kept band (folded-in high frequencies):
    ||Y − X_B||²/||Y||² with Y the output's and X_B the input's band coefficients (forward DFT).
    Reconstruction: ||U y − x||/||x|| over the whole fine grid, for y = plain or D x.
    """
    from gscli.evaluate import SignalResult

    spec = data.spec
    assert isinstance(spec, GridOperatorSpec)
    x, what = _images(spec)
    downs = [np.asarray(data.arrays[f"axis{a}/downsample"], dtype=np.float64) for a in range(spec.dims)]
    ups = [np.asarray(data.arrays[f"axis{a}/upsample"], dtype=np.float64) for a in range(spec.dims)]
    plains = [_nearest(n, m) for n, m in spec.axes]

    def apply(matrices: list[np.ndarray], v: np.ndarray) -> np.ndarray:
        for axis, matrix in enumerate(matrices):
            v = np.moveaxis(np.tensordot(matrix, v, axes=([1], [2 + axis])), 0, 2 + axis)
        return v

    y_plain, y_op = apply(plains, x), apply(downs, x)
    lowpassed = apply(ups, y_op)
    norm = float(np.linalg.norm(x))
    return SignalResult(
        signal=f"real images ({what}; reconstruction on the whole grid)",
        count=int(x.shape[0]),
        out_of_band=float(np.sum((x - lowpassed) ** 2) / max(np.sum(x**2), 1e-300)),
        reconstruction_plain=float(np.linalg.norm(apply(ups, y_plain) - x) / norm),
        reconstruction_operator=float(np.linalg.norm(lowpassed - x) / norm),
        aliasing_plain=_aliasing(y_plain, x, spec),
        aliasing_operator=_aliasing(y_op, x, spec),
    )


def evaluate_grid(data: OperatorData, signals: bool = True, seed: int = 0):
    """Re-measure every identity of a grid-operator file (:func:`check_grid`) and, if ``signals``,
    compare plain subsampling with the operator on real images. Returns an :class:`~gscli.evaluate.EvalReport`."""
    from gscli.errors import DependencyError
    from gscli.evaluate import EvalReport

    start = time.perf_counter()
    data = _read_grid(data)
    spec = data.spec
    assert isinstance(spec, GridOperatorSpec)
    report = EvalReport(data.path if data.path is not None else Path("."), str(spec), kind="grid")
    report.checks = check_grid(spec, data.arrays, seed)
    if signals:
        try:
            report.signals = [grid_signal_experiment(data)]
        except DependencyError as exc:
            report.notes.append(f"image signals skipped: {exc}")
        report.notes.append("plain subsampling takes input floor(i N / M) for output i (every R-th sample when M | N); "
                            "aliasing: share of the output's energy outside the input's kept band")
    report.seconds = time.perf_counter() - start
    return report
