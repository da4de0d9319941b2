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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gscli import __version__
from gscli.checks import Check, failed, fft_lowpass_downsample, maxabs
from gscli._memory import available_memory
from gscli.errors import FormatError, SizeError
from gscli.fileformat import OperatorData, read_operator
from gscli.scale._resample import band_limit
from gscli.specs import GridOperatorSpec

__all__ = [
    "GRID_TOLERANCES",
    "CONSTRUCTION",
    "grid_matrix",
    "cosine_sum_rows",
    "estimate_grid_memory",
    "GridOperator",
    "GridBuildResult",
    "nyquist_projector",
    "fft_truncation",
    "intermediate_sizes",
    "check_axis",
    "check_grid",
    "build_grid_operator",
    "grid_arrays",
    "file_status",
    "check_memory",
]

#: How the arrays are computed: the closed form of docs/scale.md, per axis, evaluated as the
#: Dirichlet kernel with the phase reduced exactly in integers (:func:`grid_matrix`, O(N^2) memory).
#: ``closed-form/1`` summed the cosines over an (h, M, N) array (O(N^3) memory, different last bits).
CONSTRUCTION = "closed-form/2"

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
# The closed form, in O(N^2) memory.


def _sin_pi(t: np.ndarray, q: int) -> np.ndarray:
    """sin(pi t / q) for integer arrays ``t``: the argument is reduced exactly in integers to
    [0, q/2] (sin(pi + a) = -sin a, sin(pi - a) = sin a), so each value is accurate to a few ulp."""
    t = np.mod(t, 2 * q)
    sign = np.where(t >= q, -1.0, 1.0)
    t = np.where(t >= q, t - q, t)
    t = np.where(2 * t > q, q - t, t)
    return sign * np.sin(np.pi * (t / q))


def grid_matrix(n: int, m: int) -> np.ndarray:
    """The real (m, n) resampling matrix of docs/scale.md in O(nm) memory and time.

    For m <= n, D[i, j] = (1/n) sum_{|k| <= h} e^{2 pi i k theta} with theta = i/m - j/n and
    h = floor((m-1)/2): the Dirichlet kernel sin((2h+1) pi theta) / sin(pi theta) / n, and
    (2h+1)/n where theta is an integer. theta = (i n - j m) / (m n) is a ratio of integers, so both
    sines are reduced exactly (:func:`_sin_pi`). For m > n, U = (m/n) D_{m->n}^T. Equal to
    :func:`gscli.scale.resample_matrix` (which sums the cosines over an (h, m, n) array) within
    rounding, and closer to the FFT.

    >>> bool(np.allclose(grid_matrix(6, 3) @ np.ones(6), 1.0))
    True
    """
    n, m = int(n), int(m)
    if n < 1 or m < 1:
        raise ValueError(f"sizes must be positive, got {n} and {m}")
    if m > n:
        return (m / n) * grid_matrix(m, n).T
    h, q = band_limit(m), m * n
    r = np.arange(m, dtype=np.int64)[:, None] * n - np.arange(n, dtype=np.int64)[None, :] * m
    whole = np.mod(r, q) == 0
    kernel = _sin_pi((2 * h + 1) * r, q)
    kernel /= np.where(whole, 1.0, _sin_pi(r, q))
    kernel[whole] = 2 * h + 1
    return kernel / n


def cosine_sum_rows(n: int, m: int, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of D_{n->m} (m <= n) as the cosine sum (1/n)[1 + 2 sum_{k=1}^h cos 2 pi k theta],
    each cosine's phase k (i n - j m) reduced exactly in integers: the reference of the
    ``closed_form`` check, independent of the Dirichlet form :func:`grid_matrix` (len(rows) x n memory)."""
    h, q = band_limit(m), m * n
    r = np.asarray(rows, dtype=np.int64)[:, None] * n - np.arange(n, dtype=np.int64)[None, :] * m
    total = np.zeros(r.shape)
    for k in range(1, h + 1):
        t = np.mod(k * r, q)
        total += np.cos(2.0 * np.pi * (t / q))
    return (1.0 + 2.0 * total) / n


#: The ``closed_form`` check sums the cosines on every row up to this many terms h*M*N, on
#: :data:`CLOSED_FORM_ROWS` rows spread over D above (the sum costs h*M*N cosines).
CLOSED_FORM_FULL = 2**25
CLOSED_FORM_ROWS = 24


def _closed_form_rows(n: int, m: int) -> np.ndarray:
    if band_limit(m) * m * n <= CLOSED_FORM_FULL:
        return np.arange(m)
    return np.unique(np.linspace(0, m - 1, CLOSED_FORM_ROWS).round().astype(np.int64))


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
    frequencies = np.asarray(frequencies, dtype=np.int64)
    out = np.empty((m, n), dtype=np.complex128)
    for start in range(0, n, _FFT_CHUNK):  # columns in blocks: memory O(N * block), not O(N^2) complex temporaries
        stop = min(n, start + _FFT_CHUNK)
        unit = np.zeros((n, stop - start))
        unit[np.arange(start, stop), np.arange(stop - start)] = 1.0
        spectra = np.fft.fft(unit, axis=0) / n  # column j: forward-normalised spectrum of e_j
        kept = np.zeros((m, stop - start), dtype=np.complex128)
        np.add.at(kept, frequencies % m, spectra[frequencies % n])
        out[:, start:stop] = np.fft.ifft(kept, axis=0) * m
    return out


_FFT_CHUNK = 256


def intermediate_sizes(n: int, m: int) -> list[int]:
    """Sizes L with m <= L <= n used for the semigroup check: every one when there are at most six;
    else both neighbours of the ends (m+1, n-1), an odd and an even one in the middle, and the
    smallest L > m that does not divide n and the largest proper divisor of n above m, if any."""
    sizes = list(range(m, n + 1))
    if len(sizes) <= 6:
        return sizes
    middle = (n + m) // 2
    chosen = {m + 1, n - 1, middle, middle + 1}
    chosen.add(next(size for size in range(m + 1, n) if n % size))  # n - 1 never divides n > 2
    divisors = [size for size in range(m + 1, n) if n % size == 0]
    if divisors:
        chosen.add(divisors[-1])
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
    rows = _closed_form_rows(n, m)
    p = u @ d
    errors = {
        "band": band_error,
        "realness": maxabs(truncation.imag),
        "fft_reference": maxabs(d - truncation.real),
        "closed_form": maxabs(d[rows] - cosine_sum_rows(n, m, rows)),
        "upsample_adjoint": maxabs(u - (n / m) * d.T),
        "projector_stored": maxabs(projector - p),
        "projector_symmetric": maxabs(p - p.T),
        "projector_idempotent": maxabs(p @ p - p),
        "projector_trace": abs(float(np.trace(p)) - (2 * h + 1)),
        "downsample_upsample": maxabs(d @ u - (np.eye(m) - nyquist_projector(m))),
        "semigroup": max(max(maxabs(grid_matrix(size, m) @ grid_matrix(n, size) - d),
                             maxabs(grid_matrix(size, n) @ grid_matrix(m, size) - u))
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

    # What the build pipeline asks of every family's built operator (gscli.families.Built).
    selection = ""
    suffix = ""
    status_key = None

    def datasets(self) -> dict[str, np.ndarray]:
        return self.arrays

    def attributes(self) -> dict[str, Any]:
        return self.attrs()

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
        d = grid_matrix(n, m)
        u = (n / m) * d.T
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


def file_status(path: Path, spec: GridOperatorSpec, key: Any = None) -> tuple[OperatorData | None, str]:
    """``(data, "")`` when ``path`` is a verified, current file of ``spec`` (same construction); else ``(None, why not)``."""
    try:
        data = read_operator(path)
    except FormatError as exc:
        return None, str(exc)
    if data.kind != "grid" or data.attrs.get("operator") != str(spec):
        return None, f"{path} holds {data.spec}, not {spec}"
    if data.attrs.get("construction") != CONSTRUCTION:
        return None, f"{path} was made by {data.attrs.get('construction')!r}, not {CONSTRUCTION!r}"
    return data, ""


def estimate_grid_memory(spec: GridOperatorSpec | str) -> int:
    """Bytes a build of a grid operator needs at its peak (an upper estimate), like
    :func:`gscli.build.estimate_build_memory` for groups.

    Per axis the file holds D, U and P, 8 (N^2 + 2 N M) bytes; they are held while the file written
    is read back whole and parsed for verification (three copies). The checks of the largest axis
    hold at most 8 more dense N x N float64 matrices at once (U D, its square, the FFT reference, the
    semigroup's products, the Dirichlet form's integer phases), and the ``resample_float64``
    check about 12 copies of its (2, 3, *fine) float64 batch (numpy, torch, spectra). Plus the
    interpreter and libraries (512 MiB).
    """
    spec = GridOperatorSpec.parse(spec) if isinstance(spec, str) else spec
    stored = sum(8 * (n * n + 2 * n * m) for n, m in spec.axes)
    largest = max(n for n, _ in spec.axes)
    batch = 2 * 3 * 8 * int(np.prod(spec.fine.shape, dtype=object))
    return int(3 * stored + 8 * 8 * largest**2 + 12 * batch + 512 * 2**20)


def check_memory(spec: GridOperatorSpec) -> None:
    """Refuse (:class:`SizeError`) a grid build that cannot fit in the memory available, before anything is allocated."""
    need = estimate_grid_memory(spec)
    free = available_memory()
    if free is not None and need > free:
        raise SizeError(
            f"building {spec} needs about {need / 2**30:.1f} GiB of memory (dense per-axis float64 matrices "
            f"up to {max(n for n, _ in spec.axes)}x{max(n for n, _ in spec.axes)} and their checks), and only "
            f"{free / 2**30:.1f} GiB is available; free memory or build a smaller grid"
        )
