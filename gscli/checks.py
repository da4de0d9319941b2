"""The guarantees of DESIGN §4, measured from the arrays alone (pure numpy).

The same functions serve ``gscli build`` (before writing), ``gscli eval`` (after reading), the tests
and users. Nothing here trusts a stored flag: every number is recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gscli.groups import homomorphism_defects, identity_index, inverse_table

__all__ = ["Check", "TOLERANCES", "check_operator", "fft_lowpass_downsample", "failed", "maxabs", "measured", "worst",
           "row_equivariance_bound", "column_equivariance_bound"]

#: Tolerances in float64 (DESIGN §4). Errors are the largest absolute entry of the difference.
TOLERANCES = {
    "projector_symmetric": 1e-12,
    "projector_idempotent": 1e-12,
    "projector_trace": 1e-9,
    "downsample_is_sampled_projector": 1e-12,
    "sampling_inverts_upsample": 1e-10,
    "reconstruction": 1e-10,
    "downsample_equivariance": 1e-12,
    "upsample_equivariance": 1e-12,
    "laplacian_grading": 1e-10,
    "character": 1e-9,
    "subgroup_homomorphism": 0.0,
    "fft_lowpass": 1e-12,
}


@dataclass(frozen=True)
class Check:
    """One measured guarantee: ``passed`` when ``error <= tolerance`` (a NaN error fails)."""

    name: str
    error: float
    tolerance: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error)) and self.error <= self.tolerance

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def __str__(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.name}: {verdict} (error {self.error:.3g}, tolerance {self.tolerance:.0e})"


def maxabs(a: np.ndarray) -> float:
    """The largest absolute entry (0 for an empty array; NaN if any entry is NaN)."""
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    return float(np.abs(a).max())


def worst(*errors: float) -> float:
    """The largest of ``errors`` (0 for none), NaN if any is NaN.

    Python's ``max`` keeps or drops a NaN depending on where it stands (``max(0.0, nan)`` is 0.0,
    ``max(nan, 0.0)`` is nan); an error that could not be measured must fail, wherever it stands.
    """
    values = [float(e) for e in errors]
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values, default=0.0)


def measured(name: str, error: float, detail: str = "", tolerances: Mapping[str, float] = TOLERANCES) -> Check:
    """The :class:`Check` ``name`` with its tolerance from ``tolerances``."""
    return Check(name, float(error), tolerances[name], detail)


def row_equivariance_bound(d: np.ndarray, nodes: np.ndarray, group_cayley: np.ndarray,
                           subgroup_identity: int) -> float:
    """Upper bound of max over h in H of ||D lambda_G(h) - lambda_H(h) D||_max, for D (m, n), in O(m n).

    D is H-equivariant exactly when every row is the identity's row moved by its element:
    D[a, x] = D[e, g_a^{-1} x]. With delta[a, x] = D[a, x] - D[e, g_a^{-1} x], every entry of
    D lambda_G(h) - lambda_H(h) D is delta[a, h x] - delta[h^{-1} a, x], so max(delta) - min(delta)
    bounds them all, for every h at once (and row h of the h-th difference attains |delta[h, :]|).
    """
    inverse = inverse_table(group_cayley)
    moved = d[subgroup_identity][group_cayley[inverse[nodes]]]  # row a: D[e, g_a^{-1} x]
    delta = d - moved
    return float(np.ptp(delta)) if delta.size else 0.0


def column_equivariance_bound(u: np.ndarray, nodes: np.ndarray, group_cayley: np.ndarray,
                              subgroup_identity: int) -> float:
    """Upper bound of max over h in H of ||U lambda_H(h) - lambda_G(h) U||_max, for U (n, m), in O(n m).

    U is equivariant exactly when U[x, a] = U[g_a^{-1} x, e]; with eps the difference, every entry
    of U lambda_H(h) - lambda_G(h) U is eps[x, h a] - eps[h^{-1} x, a], bounded by max(eps) - min(eps).
    """
    inverse = inverse_table(group_cayley)
    moved = u[group_cayley[inverse[nodes]].T, subgroup_identity]  # (n, m): U[g_a^{-1} x, e]
    eps = u - moved
    return float(np.ptp(eps)) if eps.size else 0.0


def fft_lowpass_downsample(n: int, rate: int, block: int = 256) -> np.ndarray:
    """Reference D for C_N -> C_{N/R} from numpy's FFT: ideal low-pass, then every R-th sample.

    Keeps frequencies |k| < M/2; for even M it keeps the cosine at the Nyquist frequency M/2 (the
    average of the bins +-M/2) and drops the sine. Returns the (M, N) matrix, float64. The columns
    (the filtered unit impulses) are transformed ``block`` at a time, so memory stays O(N M).
    """
    m = n // rate
    k = np.fft.fftfreq(n, d=1.0 / n)  # signed integer frequencies
    keep = (np.abs(k) < m / 2)[:, None]
    plus, minus = int(m // 2) % n, int(-(m // 2)) % n
    out = np.empty((m, n), dtype=np.float64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        impulses = np.zeros((n, stop - start))
        impulses[np.arange(start, stop), np.arange(stop - start)] = 1.0
        spectrum = np.fft.fft(impulses, axis=0)  # column j: spectrum of e_j
        filtered = np.where(keep, spectrum, 0)
        if m % 2 == 0:
            nyquist = (spectrum[plus] + spectrum[minus]) / 2
            filtered[plus] = nyquist
            filtered[minus] = nyquist
        out[:, start:stop] = np.fft.ifft(filtered, axis=0).real[::rate, :]
    return out


def check_operator(
    antialias: np.ndarray,
    downsample: np.ndarray,
    upsample: np.ndarray,
    nodes: np.ndarray,
    group_cayley: np.ndarray,
    subgroup_cayley: np.ndarray,
    laplacian: Any = None,
    cyclic: bool = False,
) -> list[Check]:
    """Measure every guarantee of an operator (float64 arrays).

    Parameters
    ----------
    antialias, downsample, upsample : ndarray
        P (n, n), D (m, n), U (n, m).
    nodes : ndarray of int, shape (m,)
        The subgroup's elements as indices into G, in the subgroup's order.
    group_cayley, subgroup_cayley : ndarray of int
        Cayley tables of G (n, n) and H (m, m); they define lambda_G and lambda_H.
    laplacian : ndarray, scipy sparse matrix or :class:`gscli.solver.CayleyLaplacian`, optional
        G's Cayley-graph Laplacian (symmetric), for the grading check.
    cyclic : bool
        G is C_N and H = C_M (nodes 0, R, 2R, ...): compare D with the FFT low-pass reference.

    Equivariance is measured for every h in H at once (:func:`row_equivariance_bound`); the
    character tr(P lambda(h)) for every h. The costliest step is P @ P, O(n^3).
    """
    p, d, u = (np.asarray(a, dtype=np.float64) for a in (antialias, downsample, upsample))
    nodes = np.asarray(nodes, dtype=np.int64)
    cg = np.asarray(group_cayley, dtype=np.int64)
    ch = np.asarray(subgroup_cayley, dtype=np.int64)
    n, m = p.shape[0], len(nodes)
    checks = []

    defects = homomorphism_defects(cg, ch, nodes)
    checks.append(measured("subgroup_homomorphism", defects, "pairs (a, b) of H with nodes[a]nodes[b] != nodes[ab]"))
    checks.append(measured("projector_symmetric", maxabs(p - p.T)))
    checks.append(measured("projector_idempotent", maxabs(p @ p - p)))
    checks.append(measured("projector_trace", abs(np.trace(p) - m), f"trace should equal |H| = {m}"))
    checks.append(measured("downsample_is_sampled_projector", maxabs(d - p[nodes, :])))
    checks.append(measured("sampling_inverts_upsample", maxabs(u[nodes, :] - np.eye(m))))
    checks.append(measured("reconstruction", maxabs(u @ d - p), "U S P = P: bandlimited signals come back exactly"))

    if defects == 0:
        try:
            e_g, e_h = identity_index(cg), identity_index(ch)
        except ValueError:
            e_g = e_h = -1
        if e_g < 0 or e_h < 0:
            down_err = up_err = char_err = float("inf")
        else:
            down_err = row_equivariance_bound(d, nodes, cg, e_h)
            up_err = column_equivariance_bound(u, nodes, cg, e_h)
            # tr(P lambda_G(h)) = sum_x P[x, h x]: |H| for the identity, 0 otherwise
            traces = p[np.arange(n)[None, :], cg[nodes]].sum(axis=1)
            expected = np.where(nodes == e_g, float(m), 0.0)
            char_err = maxabs(traces - expected)
        every = f"bound over all {m} elements h of H"
        checks.append(measured("downsample_equivariance", down_err, every))
        checks.append(measured("upsample_equivariance", up_err, every))
        checks.append(measured("character", char_err, "tr(P lambda(h)) = |H| if h = e else 0, every h in H"))
    if laplacian is not None:
        lap_p = laplacian @ p  # L P; and P L = (L P^T)^T for a symmetric L (dense or sparse)
        checks.append(measured("laplacian_grading", maxabs(np.asarray(lap_p - (laplacian @ p.T).T))))
    if cyclic:
        checks.append(measured("fft_lowpass", maxabs(d - fft_lowpass_downsample(n, n // m))))
    return checks


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.passed]
