"""The band walk for continuous groups (DESIGN §9): pure numpy, float64, no escnn.

The "Laplacian" of a compact group is its Casimir, constant on each irrep: the bands are the
isotypic blocks of the band-limited regular representation rho_L (every copy of one irrep). In the
coefficient basis of escnn's ``bl_regular_representation(L)`` a band is a set of coordinates, so
Q_E is a set of identity columns and S Q_E is a set of columns of the sampling matrix S.

Order of the walk: by Casimir (k^2 on SO(2)/O(2), l(l+1) on SO(3)/O(3)); irreps of equal Casimir
(O(2): the trivial irrep before the sign irrep at k = 0; O(3): the even irrep (j = 0) before the odd
one (j = 1) at every l) keep escnn's order in ``bl_regular_representation(L)``. Every band is
G-invariant, so the kept space is H-invariant whatever this tie-break.

The SVD step is the one of DESIGN §3 (:mod:`gscli.solver`): for band E, A = (I - Y Y^T) S Q_E,
A = U_A Sigma W_A^T; keep Q_E W_A[:, :r] (r singular values above ``rank_tol``) and add U_A[:, :r]
to Y, until |H| directions are kept. :func:`gscli.solver.plan` is not reused: it takes the sampled
rows of an eigenbasis of a finite group (here S Q_E is no row selection) and it stops with an error
when the bands run out before |H| directions, which here is an expected outcome (|H| >= dim, or a
band limit too low for H) that the caller must tell apart.

Three outcomes, by the rank r the walk reaches (r <= min(|H|, dim)):

- r = |H| <= dim, **anti-aliasing**: B (dim, |H|) orthonormal, P = B B^T, D = S P, U = B (S B)^{-1};
  S U = I and U S P = P.
- r = dim < |H|, **nothing to anti-alias**: every band-limited field is determined by its samples;
  P = I, D = S, U = S^+ = (S^T S)^{-1} S^T (least squares); U S = I, while S U is the orthogonal
  projector onto the samples of band-limited fields (not I: |H| samples, dim < |H| unknowns).
- r < min(|H|, dim): the samples on H are dependent even on band-limited fields (SO(3) -> O at
  L = 2: rank 23 of 24); :class:`RankDeficient` is raised, and the caller names a band limit that works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gscli.solver import RANK_TOL

__all__ = ["IrrepBand", "Walk", "RankDeficient", "order_bands", "walk", "operators", "ANTIALIAS", "NO_ANTIALIAS"]

ANTIALIAS = "antialias"
NO_ANTIALIAS = "no-antialias"


@dataclass(frozen=True)
class IrrepBand:
    """One band: an irrep (escnn id), its Casimir, its coordinates' dimension d_psi * copies, and how many V keeps."""

    irrep: tuple
    casimir: float
    dimension: int
    kept: int


class RankDeficient(ArithmeticError):
    """Sampling on H has rank below min(|H|, dim) on the band-limited fields."""

    def __init__(self, rank: int, order: int, dimension: int) -> None:
        super().__init__(f"sampling has rank {rank}, below min(|H| = {order}, dim = {dimension})")
        self.rank, self.order, self.dimension = rank, order, dimension


@dataclass(frozen=True, eq=False)
class Walk:
    """What the walk keeps: ``basis`` B (dim, r) with orthonormal columns, the band table, the rank r."""

    basis: np.ndarray
    bands: tuple[IrrepBand, ...]
    rank: int


def order_bands(irreps: Sequence[tuple], casimirs: Sequence[float], offsets: Sequence[int],
                widths: Sequence[int]) -> list[tuple[tuple, float, np.ndarray]]:
    """Bands ``(irrep, casimir, coordinates)`` in walk order: ascending Casimir, ties in the given (escnn's) order."""
    order = sorted(range(len(irreps)), key=lambda i: casimirs[i])  # sorted() is stable
    return [(tuple(irreps[i]), float(casimirs[i]), np.arange(offsets[i], offsets[i] + widths[i])) for i in order]


def walk(sampling: np.ndarray, bands: Sequence[tuple[tuple, float, np.ndarray]], rank_tol: float = RANK_TOL) -> Walk:
    """Walk ``bands`` (from :func:`order_bands`) from the lowest Casimir up, keeping new sample directions.

    Parameters
    ----------
    sampling : ndarray, shape (m, dim)
        S, evaluation of a band-limited field at H's elements.
    bands : sequence of (irrep, casimir, coordinates)
        The coordinates of each band (a partition of 0 .. dim-1), in walk order.

    Returns
    -------
    Walk
        B (dim, r), r = min(m, rank of S), and the band table.
    """
    s = np.asarray(sampling, dtype=np.float64)
    m, dim = s.shape
    covered = np.zeros((m, 0))
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    table: list[IrrepBand] = []
    total = 0
    for irrep, value, coords in bands:
        k = 0
        if total < m:
            part = s[:, coords]
            residual = part - covered @ (covered.T @ part)  # (I - Y Y^T) S Q_E
            u, sigma, wt = np.linalg.svd(residual, full_matrices=False)
            k = min(int(np.count_nonzero(sigma > rank_tol)), m - total)
            if k:
                pieces.append((coords, wt[:k].T))
                covered = np.concatenate([covered, u[:, :k]], axis=1)
                total += k
        table.append(IrrepBand(irrep, value, len(coords), k))
    basis = np.zeros((dim, total), dtype=np.float64)
    col = 0
    for coords, w in pieces:
        basis[coords, col:col + w.shape[1]] = w
        col += w.shape[1]
    return Walk(basis, tuple(table), total)


def operators(sampling: np.ndarray, result: Walk) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """``(mode, P, D, U)`` from a walk (module docstring); raises :class:`RankDeficient` when r < min(|H|, dim)."""
    s = np.asarray(sampling, dtype=np.float64)
    m, dim = s.shape
    b = result.basis
    if result.rank == m:
        p = b @ b.T
        p = 0.5 * (p + p.T)
        u = np.linalg.solve((s @ b).T, b.T).T  # B (S B)^{-1}
        return ANTIALIAS, p, s @ p, u
    if result.rank == dim:
        p = np.eye(dim)
        u = np.linalg.solve(s.T @ s, s.T)  # S^+ for full column rank
        return NO_ANTIALIAS, p, s.copy(), u
    raise RankDeficient(result.rank, m, dim)
