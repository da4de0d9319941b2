"""The guarantees of DESIGN §4, measured from the arrays alone (pure numpy).

The same functions serve ``gscli build`` (before writing), ``gscli eval`` (after reading), the tests
and users. Nothing here trusts a stored flag: every number is recomputed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Check", "TOLERANCES", "check_operator", "fft_lowpass_downsample", "failed"]

#: Tolerances in float64 (DESIGN §4). Errors are the largest absolute entry of the difference.
TOLERANCES = {
    "projector_symmetric": 1e-12,
    "projector_idempotent": 1e-12,
    "projector_trace": 1e-9,
    "downsample_is_sampled_projector": 1e-12,
    "sampling_inverts_upsample": 1e-10,
    "reconstruction": 1e-10,
    "downsample_equivariance": 1e-12,
    "upsample_equivariance": 1e-10,
    "laplacian_grading": 1e-10,
    "character": 1e-9,
    "subgroup_homomorphism": 0.0,
    "fft_lowpass": 1e-12,
}


@dataclass(frozen=True)
class Check:
    """One measured guarantee: ``passed`` when ``error <= tolerance``."""

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


def _maxabs(a: np.ndarray) -> float:
    return float(np.abs(a).max(initial=0.0))


def _check(name: str, error: float, detail: str = "") -> Check:
    return Check(name, float(error), TOLERANCES[name], detail)


def fft_lowpass_downsample(n: int, rate: int) -> np.ndarray:
    """Reference D for C_N -> C_{N/R} from numpy's FFT: ideal low-pass, then every R-th sample.

    Keeps frequencies |k| < M/2; for even M it keeps the cosine at the Nyquist frequency M/2 (the
    average of the bins +-M/2) and drops the sine. Returns the (M, N) matrix, float64.
    """
    m = n // rate
    k = np.fft.fftfreq(n, d=1.0 / n)  # signed integer frequencies
    spectrum = np.fft.fft(np.eye(n), axis=0)  # column j: spectrum of e_j
    filtered = np.where(np.abs(k)[:, None] < m / 2, spectrum, 0)
    if m % 2 == 0:
        plus, minus = int(m // 2) % n, int(-(m // 2)) % n
        nyquist = (spectrum[plus] + spectrum[minus]) / 2
        filtered[plus] = nyquist
        filtered[minus] = nyquist
    lowpassed = np.fft.ifft(filtered, axis=0)
    return np.ascontiguousarray(lowpassed.real[::rate, :])


def check_operator(
    antialias: np.ndarray,
    downsample: np.ndarray,
    upsample: np.ndarray,
    nodes: np.ndarray,
    group_cayley: np.ndarray,
    subgroup_cayley: np.ndarray,
    laplacian: np.ndarray | None = None,
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
    laplacian : ndarray, optional
        G's Cayley-graph Laplacian, for the grading check.
    cyclic : bool
        G is C_N and H = C_M (nodes 0, R, 2R, ...): compare D with the FFT low-pass reference.
    """
    p, d, u = (np.asarray(a, dtype=np.float64) for a in (antialias, downsample, upsample))
    nodes = np.asarray(nodes, dtype=np.int64)
    cg = np.asarray(group_cayley, dtype=np.int64)
    ch = np.asarray(subgroup_cayley, dtype=np.int64)
    n, m = p.shape[0], len(nodes)
    checks = []

    defects = int(np.count_nonzero(cg[np.ix_(nodes, nodes)] != nodes[ch]))
    checks.append(_check("subgroup_homomorphism", defects, "pairs (a, b) of H with nodes[a]nodes[b] != nodes[ab]"))
    checks.append(_check("projector_symmetric", _maxabs(p - p.T)))
    checks.append(_check("projector_idempotent", _maxabs(p @ p - p)))
    checks.append(_check("projector_trace", abs(np.trace(p) - m), f"trace should equal |H| = {m}"))
    checks.append(_check("downsample_is_sampled_projector", _maxabs(d - p[nodes, :])))
    checks.append(_check("sampling_inverts_upsample", _maxabs(u[nodes, :] - np.eye(m))))
    checks.append(_check("reconstruction", _maxabs(u @ d - p), "U S P = P: bandlimited signals come back exactly"))

    if defects == 0:
        down_err = up_err = char_err = 0.0
        for h in range(m):
            g = nodes[h]
            # D lambda_G(h) = D[:, g x];  lambda_H(h) D puts row j at row h j.
            lam_h_d = np.empty_like(d)
            lam_h_d[ch[h]] = d
            down_err = max(down_err, _maxabs(d[:, cg[g]] - lam_h_d))
            # U lambda_H(h) = U[:, h j];  lambda_G(h) U puts row x at row g x.
            lam_g_u = np.empty_like(u)
            lam_g_u[cg[g]] = u
            up_err = max(up_err, _maxabs(u[:, ch[h]] - lam_g_u))
            # tr(P lambda_G(h)) = sum_x P[x, h x]; it is m for the identity, 0 otherwise.
            expected = m if g == cg[g, g] and np.all(cg[g] == np.arange(n)) else 0.0
            char_err = max(char_err, abs(p[np.arange(n), cg[g]].sum() - expected))
        checks.append(_check("downsample_equivariance", down_err, f"max over all {m} elements h of H"))
        checks.append(_check("upsample_equivariance", up_err, f"max over all {m} elements h of H"))
        checks.append(_check("character", char_err, "tr(P lambda(h)) = |H| if h = e else 0"))
    if laplacian is not None:
        lap = np.asarray(laplacian, dtype=np.float64)
        checks.append(_check("laplacian_grading", _maxabs(p @ lap - lap @ p)))
    if cyclic:
        checks.append(_check("fft_lowpass", _maxabs(d - fft_lowpass_downsample(n, n // m))))
    return checks


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.passed]
