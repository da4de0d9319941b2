"""The guarantees of a continuous-group operator (DESIGN §9), measured from its arrays alone (numpy).

``rho_L(h)`` is applied block by block from the stored irrep images (never formed densely), and
``lambda_H(h)`` from H's Cayley table in escnn's order. The same function serves the build (before
writing), the tests and users; nothing here trusts a stored flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gscli.checks import Check, maxabs, worst
from gscli.families.continuous._solver import ANTIALIAS

__all__ = ["Layout", "TOLERANCES", "apply_rho", "check_continuous", "lowpass_closed_form"]

#: float64 tolerances (DESIGN §9: all <= 1e-12).
TOLERANCES = {
    "downsample_equivariance": 1e-12,
    "upsample_equivariance": 1e-12,
    "projector_symmetric": 1e-12,
    "projector_idempotent": 1e-12,
    "projector_rank": 1e-9,
    "projector_commutes": 1e-12,
    "downsample_is_sampled_projector": 1e-12,
    "sampling_inverts_upsample": 1e-12,
    "upsample_inverts_sampling": 1e-12,
    "reconstruction": 1e-12,
    "subgroup_homomorphism": 1e-12,
    "sampling_matches_escnn": 1e-12,
    "lowpass_closed_form": 1e-12,
}


@dataclass(frozen=True)
class Layout:
    """Where each irrep's coefficients sit: offset, d_psi, copies (escnn's ``bl_regular_representation`` order)."""

    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    copies: tuple[int, ...]

    @property
    def dimension(self) -> int:
        return int(sum(d * c for d, c in zip(self.sizes, self.copies)))

    def split(self, images: np.ndarray) -> list[np.ndarray]:
        """The flat per-element irrep images (m, sum d^2) as a list of (m, d, d) stacks."""
        out, start = [], 0
        for d in self.sizes:
            out.append(images[:, start:start + d * d].reshape(-1, d, d))
            start += d * d
        return out


def apply_rho(layout: Layout, blocks: Sequence[np.ndarray], x: np.ndarray, transpose: bool = False) -> np.ndarray:
    """rho_L(h) x (or rho_L(h)^T x) for x (dim, k), with ``blocks`` the irrep images of one h."""
    y = np.empty_like(x, dtype=np.float64)
    for off, d, c, r in zip(layout.offsets, layout.sizes, layout.copies, blocks):
        part = x[off:off + d * c].reshape(c, d, -1)
        y[off:off + d * c] = np.einsum("ij,cjk->cik", r.T if transpose else r, part).reshape(d * c, -1)
    return y


def lowpass_closed_form(n: int, L: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SO(2) -> C_N in closed form: (S, P, U) of the ideal low-pass (DESIGN §3, §9), float64.

    Coefficients (escnn's SO(2) layout): c_0, then (a_k, b_k) for k = 1 .. L with
    f(theta) = c_0 + sqrt(2) sum_k (a_k cos k theta + b_k sin k theta); samples at theta_j = 2 pi j / N.
    V keeps every k < N/2 and, for even N, the cosine a_{N/2}; U reads them off by the discrete
    Fourier sums (the Nyquist cosine with weight 1/(2N) instead of 1/N, its column having twice the norm).
    """
    j = np.arange(n)
    theta = 2.0 * np.pi * j / n
    dim = 2 * L + 1
    s = np.empty((n, dim))
    s[:, 0] = 1.0
    keep = np.zeros(dim)
    u = np.zeros((dim, n))
    keep[0], u[0] = 1.0, 1.0 / n
    for k in range(1, L + 1):
        angle = 2.0 * np.pi * ((k * j) % n) / n  # reduced in integers first
        s[:, 2 * k - 1] = np.sqrt(2.0) * np.cos(angle)
        s[:, 2 * k] = np.sqrt(2.0) * np.sin(angle)
        if 2 * k < n:
            keep[2 * k - 1] = keep[2 * k] = 1.0
            u[2 * k - 1] = np.sqrt(2.0) * np.cos(angle) / n
            u[2 * k] = np.sqrt(2.0) * np.sin(angle) / n
        elif 2 * k == n:
            keep[2 * k - 1] = 1.0
            u[2 * k - 1] = np.sqrt(2.0) * np.cos(angle) / (2 * n)
    del theta
    return s, np.diag(keep), u


def check_continuous(
    *,
    mode: str,
    sampling: np.ndarray,
    downsample: np.ndarray,
    upsample: np.ndarray,
    antialias: np.ndarray,
    irrep_images: np.ndarray,
    layout: Layout,
    subgroup_cayley: np.ndarray,
    element_matrices: np.ndarray,
    family: str = "",
    reference: np.ndarray | None = None,
    tolerances: dict[str, float] = TOLERANCES,
) -> list[Check]:
    """Measure every guarantee of DESIGN §9 from the arrays.

    Parameters
    ----------
    mode : str
        ``"antialias"`` (|H| <= dim: S U = I, U S P = P) or ``"no-antialias"`` (|H| > dim: P = I, U S = I).
    sampling, downsample, upsample, antialias : ndarray
        S (m, dim), D (m, dim), U (dim, m), P (dim, dim).
    irrep_images : ndarray, shape (m, sum d_psi^2)
        rho_psi(h_i) flattened, irrep after irrep (``layout``).
    subgroup_cayley : ndarray of int, shape (m, m)
        H's table in escnn's order: lambda_H(h_a) e_b = e_{h_a h_b}.
    element_matrices : ndarray, shape (m, k, k)
        H's elements included in G, acting on R^2 or R^3.
    family : str
        ``"SO2"`` adds the closed-form low-pass check.
    reference : ndarray, optional
        escnn's own samples of the same coefficients at H's elements (``FourierPointwise``'s ``A``).
    """
    s, d, u, p = (np.asarray(a, dtype=np.float64) for a in (sampling, downsample, upsample, antialias))
    m, dim = s.shape
    table = np.asarray(subgroup_cayley, dtype=np.int64)
    per_h = list(zip(*layout.split(np.asarray(irrep_images, dtype=np.float64))))
    cols = np.arange(m)

    def lam(a: int, x: np.ndarray) -> np.ndarray:  # lambda_H(h_a) x for x (m, k): row h_a h_b gets row b
        y = np.empty_like(x)
        y[table[a, cols]] = x
        return y

    eq_d = eq_u = comm = 0.0
    for a, blocks in enumerate(per_h):
        # D rho(h) = (rho(h)^T D^T)^T; lambda(h) D
        eq_d = worst(eq_d, maxabs(apply_rho(layout, blocks, d.T, transpose=True).T - lam(a, d)))
        # U lambda(h) = (lambda(h)^T U^T)^T, lambda^T = lambda(h^{-1}): column b of U lambda(h) is column h b of U
        u_lam = u[:, table[a, cols]]
        eq_u = worst(eq_u, maxabs(u_lam - apply_rho(layout, blocks, u)))
        comm = worst(comm, maxabs(apply_rho(layout, blocks, p.T, transpose=True).T - apply_rho(layout, blocks, p)))
    rank = min(m, dim)
    mats = np.asarray(element_matrices, dtype=np.float64)
    homo = maxabs(np.einsum("aij,bjk->abik", mats, mats) - mats[table])
    checks = [
        Check("downsample_equivariance", eq_d, tolerances["downsample_equivariance"], f"max over {m} h: |D rho_L(h) - lambda_H(h) D|"),
        Check("upsample_equivariance", eq_u, tolerances["upsample_equivariance"], f"max over {m} h: |U lambda_H(h) - rho_L(h) U|"),
        Check("projector_symmetric", maxabs(p - p.T), tolerances["projector_symmetric"], "|P - P^T|"),
        Check("projector_idempotent", maxabs(p @ p - p), tolerances["projector_idempotent"], "|P P - P|"),
        Check("projector_rank", abs(float(np.trace(p)) - rank), tolerances["projector_rank"], f"|tr P - min(|H|, dim)| = |tr P - {rank}|"),
        Check("projector_commutes", comm, tolerances["projector_commutes"], "max over h: |P rho_L(h) - rho_L(h) P|"),
        Check("downsample_is_sampled_projector", maxabs(d - s @ p), tolerances["downsample_is_sampled_projector"], "|D - S P|"),
        Check("subgroup_homomorphism", homo, tolerances["subgroup_homomorphism"], "|M(h_a) M(h_b) - M(h_a h_b)| over H's table"),
    ]
    if mode == ANTIALIAS:
        checks.append(Check("sampling_inverts_upsample", maxabs(s @ u - np.eye(m)), tolerances["sampling_inverts_upsample"], "|S U - I|"))
        checks.append(Check("reconstruction", maxabs(u @ s @ p - p), tolerances["reconstruction"], "|U S P - P|"))
    else:
        checks.append(Check("upsample_inverts_sampling", maxabs(u @ s - np.eye(dim)), tolerances["upsample_inverts_sampling"],
                            "|U S - I| (|H| > dim: nothing to anti-alias)"))
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        err = maxabs(ref - s) if ref.shape == s.shape else float("nan")
        checks.append(Check("sampling_matches_escnn", err, tolerances["sampling_matches_escnn"],
                            "|S - A| with A escnn FourierPointwise(normalize=False) on a grid of H's elements"))
    if family == "SO2":
        s_cf, p_cf, u_cf = lowpass_closed_form(m, (dim - 1) // 2)
        err = worst(maxabs(s - s_cf), maxabs(p - p_cf) if mode == ANTIALIAS else maxabs(p - np.eye(dim)),
                    maxabs(d - s_cf @ p_cf) if mode == ANTIALIAS else 0.0, maxabs(u - u_cf) if mode == ANTIALIAS else 0.0)
        checks.append(Check("lowpass_closed_form", err, tolerances["lowpass_closed_form"], "S, P, D, U against the ideal low-pass"))
    return checks
