"""The exact spectral band solver (DESIGN §3): pure numpy, float64.

Given a group G (its Cayley table and generators) and the nodes of a subgroup H, find the
orthogonal projector P onto a subspace V of functions on G, dim V = |H|, such that

(a) sampling on H is injective on V, so U = B (S B)^{-1} reconstructs every f in V from S f;
(b) V is invariant under the left action of H, so D = S P and U are H-equivariant;
(c) V is spanned by eigenvectors of the Cayley-graph Laplacian L with tr(P L) minimal.

Walk the Laplacian's eigenspaces ("bands") from low to high frequency; from each band keep exactly
the part that adds new directions in sample space (the orthogonal complement of its aliasing
kernel). No iterative optimiser, O(n^3) time, O(n^2) memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gscli.groups import FiniteGroup

__all__ = ["Band", "Solution", "laplacian", "spectral_bands", "solve", "sampling_matrix", "BAND_TOL", "RANK_TOL"]

#: Eigenvalues closer than BAND_TOL * max(1, lambda_max) form one band.
BAND_TOL = 1e-8
#: Singular values of the projected sampling map at or below RANK_TOL count as aliasing (zero).
RANK_TOL = 1e-8


@dataclass(frozen=True)
class Band:
    """One eigenspace of the Laplacian: its frequency, its dimension, how many dimensions V keeps."""

    eigenvalue: float
    dimension: int
    kept: int


@dataclass(frozen=True, eq=False)
class Solution:
    """Operators for sampling G on the subgroup ``nodes``, all float64.

    Shapes: ``antialias`` P (n, n); ``downsample`` D = S P (m, n); ``upsample`` U (n, m);
    ``basis`` B (n, m) with orthonormal columns and P = B B^T.
    """

    nodes: np.ndarray
    basis: np.ndarray
    antialias: np.ndarray
    downsample: np.ndarray
    upsample: np.ndarray
    bands: tuple[Band, ...]

    @property
    def cost(self) -> float:
        """Aliasing cost tr(P L): the energy-weighted frequency of the kept space (smaller is smoother)."""
        return float(sum(b.eigenvalue * b.kept for b in self.bands))


def sampling_matrix(n: int, nodes: np.ndarray) -> np.ndarray:
    """S, shape (m, n): ``S[i, nodes[i]] = 1``."""
    s = np.zeros((len(nodes), n), dtype=np.float64)
    s[np.arange(len(nodes)), nodes] = 1.0
    return s


def laplacian(group: FiniteGroup) -> np.ndarray:
    """L = Deg - A of the Cayley graph with edges x ~ x s^{+-1} for every generator s (float64)."""
    n = group.order
    adjacency = np.zeros((n, n), dtype=np.float64)
    x = np.arange(n)
    for s in group.generators:
        for t in (s, int(group.inverse[s])):
            y = group.cayley[x, t]
            adjacency[x, y] = 1.0
            adjacency[y, x] = 1.0
    np.fill_diagonal(adjacency, 0.0)
    return np.diag(adjacency.sum(axis=1)) - adjacency


@lru_cache(maxsize=16)
def _bands_cached(group: FiniteGroup) -> tuple[tuple[float, np.ndarray], ...]:
    return spectral_bands(laplacian(group))


def spectral_bands(lap: np.ndarray, tol: float = BAND_TOL) -> tuple[tuple[float, np.ndarray], ...]:
    """Eigenspaces of a symmetric matrix, ascending: ``((eigenvalue, Q_E), ...)``, Q_E orthonormal."""
    values, vectors = np.linalg.eigh(lap)
    cut = tol * max(1.0, float(abs(values).max(initial=0.0)))
    bands = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] - values[i - 1] > cut:
            bands.append((float(values[start:i].mean()), vectors[:, start:i]))
            start = i
    return tuple(bands)


def solve(
    group: FiniteGroup,
    nodes: np.ndarray,
    bands: tuple[tuple[float, np.ndarray], ...] | None = None,
    rank_tol: float = RANK_TOL,
) -> Solution:
    """Anti-aliasing, sampling and reconstruction operators for sampling ``group`` on ``nodes``.

    Parameters
    ----------
    group : FiniteGroup
        G, with n elements.
    nodes : ndarray of int, shape (m,)
        Indices in G of the subgroup's elements, in the subgroup's own order.
    bands : optional
        Precomputed Laplacian eigenspaces (default: those of G's Cayley graph, cached).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    n, m = group.order, len(nodes)
    if bands is None:
        bands = _bands_cached(group)
    columns: list[np.ndarray] = []
    covered = np.zeros((m, 0), dtype=np.float64)  # orthonormal basis Y of sample space reached so far
    kept_per_band: list[Band] = []
    for eigenvalue, q in bands:
        kept = 0
        if covered.shape[1] < m:
            sampled = q[nodes, :]  # S Q_E
            residual = sampled - covered @ (covered.T @ sampled)  # (I - Y Y^T) S Q_E
            u, sigma, wt = np.linalg.svd(residual, full_matrices=False)
            kept = min(int(np.count_nonzero(sigma > rank_tol)), m - covered.shape[1])
            if kept:
                columns.append(q @ wt[:kept].T)
                covered = np.concatenate([covered, u[:, :kept]], axis=1)
        kept_per_band.append(Band(eigenvalue, q.shape[1], kept))
    basis = np.concatenate(columns, axis=1) if columns else np.zeros((n, 0))
    if basis.shape[1] != m:
        raise ArithmeticError(f"{group.name}: the bands cover only {basis.shape[1]} of {m} sample directions")
    antialias = basis @ basis.T
    antialias = 0.5 * (antialias + antialias.T)
    downsample = antialias[nodes, :].copy()
    upsample = np.linalg.solve(basis[nodes, :].T, basis.T).T  # B (S B)^{-1}
    return Solution(nodes, basis, antialias, downsample, upsample, tuple(kept_per_band))
