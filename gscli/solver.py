"""The exact spectral band solver (DESIGN §3): pure numpy, float64.

Given a group G (its Cayley table and generators) and the nodes of a subgroup H, find the
orthogonal projector P onto a subspace V of functions on G, dim V = |H|, such that

(a) sampling on H is injective on V, so U = B (S B)^{-1} reconstructs every f in V from S f;
(b) V is invariant under the left action of H, so D = S P and U are H-equivariant;
(c) V is spanned by eigenvectors of the Cayley-graph Laplacian L with tr(P L) minimal.

Walk the Laplacian's eigenspaces ("bands") from low to high frequency; from each band keep exactly
the part that adds new directions in sample space (the orthogonal complement of its aliasing
kernel). No iterative optimiser.

Two ways to the bands. For C_N and D_N (escnn's tables and generators) they are written down:
the Cayley graph is a cycle (C_N) or a prism (D_N), its eigenvectors are cosines and sines, and
which eigenvalues coincide is decided exactly (:func:`planar_bands`), so no tolerance separates
bands however close two distinct frequencies come (D_907 has two 4.4e-8 apart). Other groups
(at most 120 elements) use ``numpy.linalg.eigh`` with a relative tolerance (:func:`spectral_bands`).
With planar bands and a planar H, sample space splits into H's frequency classes, orthogonal to
each other, and the walk runs class by class: O(|G| |H|) instead of O(|H|^3).

Finally P is averaged over H, P <- mean_h lambda(h) P lambda(h)^T (and U likewise): the
orthogonal projection onto H-invariant matrices. The exact P is H-invariant, so this moves P by
no more than its rounding error, and it makes D = S P and U equivariant to the last bit, whatever
|G| (the rounding error of B B^T grows with |G|).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache

import numpy as np

from gscli.groups import FiniteGroup, inverse_table

__all__ = [
    "Band",
    "Eigenspace",
    "Plan",
    "Solution",
    "laplacian",
    "laplacian_sparse",
    "CayleyLaplacian",
    "connection_set",
    "spectral_bands",
    "planar_bands",
    "group_bands",
    "plan",
    "solve",
    "average_over_subgroup",
    "BAND_TOL",
    "RANK_TOL",
]

#: Eigenvalues from ``eigh`` closer than BAND_TOL * max(1, lambda_max) form one band (groups without
#: a closed-form spectrum: the point groups, whose distinct eigenvalues are far further apart).
BAND_TOL = 1e-8
#: Singular values of the projected sampling map at or below RANK_TOL count as aliasing (zero).
RANK_TOL = 1e-8


@dataclass(frozen=True)
class Band:
    """One eigenspace of the Laplacian: its frequency, its dimension, how many dimensions V keeps."""

    eigenvalue: float
    dimension: int
    kept: int


class Eigenspace:
    """One band: its eigenvalue and an orthonormal basis Q_E (n, d), dense or in closed form.

    ``rows(idx)`` is ``Q_E[idx, :]`` and ``vectors()`` the whole (n, d) matrix, float64.
    """

    def __init__(self, eigenvalue: float, dense: np.ndarray | None = None,
                 modes: tuple[tuple[int, int, int], ...] = (), n_rotations: int = 0, dihedral: bool = False) -> None:
        self.eigenvalue = float(eigenvalue)
        self._dense = dense
        self.modes = modes  # closed form: (sheet sign f, frequency k, 1 for sine / 0 for cosine)
        self._n = n_rotations
        self._dihedral = dihedral

    @property
    def dimension(self) -> int:
        return self._dense.shape[1] if self._dense is not None else len(self.modes)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        if self._dense is not None:
            return self._dense[idx, :]
        idx = np.asarray(idx, dtype=np.int64)
        n = self._n
        sheet, j = idx // n, idx % n
        sheets = 2 if self._dihedral else 1
        out = np.empty((len(idx), len(self.modes)), dtype=np.float64)
        for c, (f, k, sine) in enumerate(self.modes):
            angle = (2.0 * np.pi / n) * ((k * j) % n)  # reduced exactly in integers first
            value = np.sin(angle) if sine else np.cos(angle)
            real = k == 0 or 2 * k == n
            norm = np.sqrt(n * sheets / (1.0 if real else 2.0))
            out[:, c] = np.where((sheet * f) % 2 == 1, -value, value) / norm
        return out

    def vectors(self) -> np.ndarray:
        if self._dense is not None:
            return self._dense
        return self.rows(np.arange(self._n * (2 if self._dihedral else 1)))


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


# --------------------------------------------------------------------------------------------------
# The Laplacian.


def connection_set(group: FiniteGroup) -> tuple[int, ...]:
    """The distinct elements t != e among the generators and their inverses: edges are x ~ x t."""
    found: list[int] = []
    for s in group.generators:
        for t in (int(s), int(group.inverse[s])):
            if t != group.identity and t not in found:
                found.append(t)
    return tuple(found)


def laplacian(group: FiniteGroup) -> np.ndarray:
    """L = Deg - A of the Cayley graph with edges x ~ x s^{+-1} for every generator s (float64, dense)."""
    n = group.order
    adjacency = np.zeros((n, n), dtype=np.float64)
    x = np.arange(n)
    for t in connection_set(group):
        adjacency[x, group.cayley[x, t]] = 1.0
    return np.diag(adjacency.sum(axis=1)) - adjacency


def laplacian_sparse(group: FiniteGroup):  # -> scipy.sparse.csr_matrix
    """The same L as :func:`laplacian`, as a scipy CSR matrix (|T| + 1 entries a row, not n)."""
    from gscli._optional import need

    sparse = need("scipy.sparse", "cli", "the sparse Laplacian (gscli build, gscli eval)")

    n = group.order
    x = np.arange(n)
    ts = connection_set(group)
    rows = np.concatenate([x] + [x for _ in ts])
    cols = np.concatenate([x] + [group.cayley[x, t] for t in ts])
    vals = np.concatenate([np.full(n, float(len(ts)))] + [np.full(n, -1.0) for _ in ts])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


class CayleyLaplacian:
    """The same L as :func:`laplacian`, as an operator for ``L @ X`` with numpy alone (no scipy).

    Row x of A X is the sum of the rows x s of X over the connection set, so ``L @ X`` costs
    O(n |T| k) for an (n, k) ``X``, as a sparse product does, without forming the n x n matrix.

    >>> from gscli.groups import planar_group
    >>> g = planar_group("D", 6)
    >>> x = np.random.default_rng(0).standard_normal((12, 3))
    >>> bool(np.allclose(CayleyLaplacian(g) @ x, laplacian(g) @ x))
    True
    """

    def __init__(self, group: FiniteGroup) -> None:
        self.shape = (group.order, group.order)
        self._neighbours = group.cayley[:, list(connection_set(group))]  # (n, |T|): x s for s in T

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[:1] != self.shape[1:]:
            raise ValueError(f"L is {self.shape[0]} x {self.shape[1]}, cannot multiply an array of shape {x.shape}")
        out = self._neighbours.shape[1] * x
        for column in self._neighbours.T:
            out -= x[column]
        return out


# --------------------------------------------------------------------------------------------------
# Bands.


def spectral_bands(lap: np.ndarray, tol: float = BAND_TOL) -> tuple[tuple[float, np.ndarray], ...]:
    """Eigenspaces of a symmetric matrix, ascending: ``((eigenvalue, Q_E), ...)``, Q_E orthonormal.

    Eigenvalues closer than ``tol * max(1, |lambda|_max)`` form one band. ``eigh`` finds each
    eigenvalue to within about n * eps * |lambda|_max; a gap between that and the tolerance cannot
    be told apart from a rounding error or a real frequency, so it raises ``ArithmeticError``
    rather than guess (planar groups never get here: :func:`planar_bands`).
    """
    values, vectors = np.linalg.eigh(lap)
    scale = max(1.0, float(abs(values).max(initial=0.0)))
    cut = tol * scale
    noise = 64 * len(values) * np.finfo(np.float64).eps * scale
    gaps = np.diff(values)
    unclear = (gaps > noise) & (gaps <= cut)
    if unclear.any():
        i = int(np.argmax(unclear))
        raise ArithmeticError(
            f"eigenvalues {values[i]:.17g} and {values[i + 1]:.17g} are {gaps[i]:.2g} apart: more than rounding "
            f"({noise:.1g}) but within the band tolerance ({cut:.1g}); cannot tell whether they are one band"
        )
    bands = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] - values[i - 1] > cut:
            bands.append((float(values[start:i].mean()), vectors[:, start:i]))
            start = i
    return tuple(bands)


def _twice_cos_if_rational(k: int, n: int) -> int | None:
    """2 cos(2 pi k / n) when it is rational (then it is an integer in -2..2), else None.

    By Niven's theorem cos(q pi), q rational, is rational only at multiples of 60 and 90 degrees.
    """
    if (12 * k) % n:
        return None
    t = (12 * k // n) % 12  # the angle in units of 30 degrees
    return {0: 2, 2: 1, 3: 0, 4: -1, 6: -2, 8: -1, 9: 0, 10: 1}.get(t)


def planar_bands(family: str, n: int) -> tuple[Eigenspace, ...]:
    """The Laplacian eigenspaces of C_N or D_N (escnn's tables and generators), in closed form.

    The Cayley graph of C_N is the N-cycle (edges x ~ x r^{+-1}); that of D_N is the prism
    C_N x K_2 (x r^{+-1} stays on the sheet of rotations or of reflections, x s jumps between
    sheets at the same k). Mode (f, k) with f in {0, 1} and 0 <= k <= N/2, on element
    r^j s^e (index e N + j): cos(2 pi k j / N) (-1)^(f e), and the sine when 0 < k < N/2; eigenvalue
    w (1 - cos(2 pi k / N)) + 2 f, with w = 2 (N >= 3), 1 (N = 2: r = r^{-1}, one edge) or 0 (N = 1).

    Equal eigenvalues form one band. Within a sheet sign f the eigenvalue grows with k; across,
    w (cos a - cos b) = 2 needs cos a, cos b both rational (Conway and Jones, 1976: the only
    rational two-cosine relation with irrational terms is cos(pi/5) - cos(2 pi/5) = 1/2), so
    coincidences are decided exactly, in integers, without a tolerance.
    """
    dihedral = family == "D"
    w = 2 if n >= 3 else (1 if n == 2 else 0)
    labelled: dict[object, list[tuple[int, int, int]]] = {}
    value_of: dict[object, float] = {}
    for f in (0, 1) if dihedral else (0,):
        for k in range(n // 2 + 1):
            c2 = _twice_cos_if_rational(k, n)
            if c2 is not None:
                key: object = Fraction(w) - Fraction(w * c2, 2) + 2 * f
                value = float(key)  # type: ignore[arg-type]
            else:
                key = ("irrational", f, k)
                value = w * (1.0 - np.cos(2.0 * np.pi * k / n)) + 2.0 * f
            modes = [(f, k, 0)] + ([(f, k, 1)] if 0 < k and 2 * k != n else [])
            labelled.setdefault(key, []).extend(modes)
            value_of[key] = value
    ordered = sorted(labelled, key=lambda key: value_of[key])
    return tuple(Eigenspace(value_of[key], modes=tuple(labelled[key]), n_rotations=n, dihedral=dihedral)
                 for key in ordered)


def group_bands(group: FiniteGroup) -> tuple[Eigenspace, ...]:
    """G's Laplacian eigenspaces, ascending: closed form for C_N and D_N, ``eigh`` otherwise (cached)."""
    if group.planar is not None:
        return _planar_bands_cached(*group.planar)
    return _eigh_bands(group)


@lru_cache(maxsize=64)
def _planar_bands_cached(family: str, n: int) -> tuple[Eigenspace, ...]:
    return planar_bands(family, n)


@lru_cache(maxsize=8)
def _eigh_bands(group: FiniteGroup) -> tuple[Eigenspace, ...]:
    return tuple(Eigenspace(value, dense=q) for value, q in spectral_bands(laplacian(group)))


def _as_eigenspaces(bands: Sequence) -> tuple[Eigenspace, ...]:
    return tuple(b if isinstance(b, Eigenspace) else Eigenspace(b[0], dense=np.asarray(b[1], dtype=np.float64))
                 for b in bands)


# --------------------------------------------------------------------------------------------------
# The walk.


def _sample_classes(group: FiniteGroup, nodes: np.ndarray) -> tuple[int, bool] | None:
    """(M, H has reflections) when G is C_N / D_N and H = ``nodes`` is one of its subgroups.

    H's rotations are then r^{R b} (R = N/M) and its reflections, if any, r^{a + R b} s. A
    sampled mode of frequency k is, on each sheet of H, a function of b of frequency k mod M:
    modes of different classes {j, -j} (j = k mod M folded into 0..M/2) are orthogonal in sample
    space, so the walk can run class by class.
    """
    if group.planar is None:
        return None
    _, n = group.planar
    rotations = np.sort(nodes[nodes < n])
    reflections = np.sort(nodes[nodes >= n]) - n
    m = len(rotations)
    if m == 0 or n % m or not np.array_equal(rotations, (n // m) * np.arange(m)):
        return None
    if len(reflections) not in (0, m):
        return None
    if len(reflections) and not np.array_equal(reflections, reflections[0] + (n // m) * np.arange(m)):
        return None
    return m, bool(len(reflections))


@dataclass(frozen=True, eq=False)
class Plan:
    """What the walk keeps: per band, the orthonormal directions W (d x kept) with Q_E W in V.

    ``kept[i]`` is what V keeps of ``spaces[i]``; bands after the walk stopped keep nothing.
    """

    group: FiniteGroup
    nodes: np.ndarray
    spaces: tuple[Eigenspace, ...]
    kept: tuple[int, ...]
    pieces: tuple[tuple[Eigenspace, np.ndarray], ...]

    @cached_property
    def bands(self) -> tuple[Band, ...]:
        """The band table: (eigenvalue, dimension, kept) for every band of G."""
        kept = self.kept + (0,) * (len(self.spaces) - len(self.kept))
        return tuple(Band(s.eigenvalue, s.dimension, k) for s, k in zip(self.spaces, kept))

    @property
    def cost(self) -> float:
        """tr(P L), from the band table: sum of eigenvalue times kept dimensions."""
        return float(sum(s.eigenvalue * k for s, k in zip(self.spaces, self.kept)))


def plan(
    group: FiniteGroup,
    nodes: np.ndarray,
    bands: Sequence | None = None,
    rank_tol: float = RANK_TOL,
) -> Plan:
    """Walk the bands (DESIGN §3) and say what V keeps of each; P, D and U are not formed.

    ``bands``: precomputed eigenspaces (``Eigenspace`` objects or ``(eigenvalue, Q_E)`` pairs);
    default :func:`group_bands`.
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    m = len(nodes)
    spaces = group_bands(group) if bands is None else _as_eigenspaces(bands)
    classes = _sample_classes(group, nodes) if bands is None else None  # given bands: one class, no shortcut
    if classes is not None:
        big_m, reflected = classes

        def class_of(mode: tuple[int, int, int]) -> int:
            j = mode[1] % big_m
            return min(j, big_m - j)

        def capacity(j: int) -> int:
            return (1 if j == 0 or 2 * j == big_m else 2) * (2 if reflected else 1)
    else:
        def class_of(mode: tuple[int, int, int]) -> int:
            return 0

        def capacity(j: int) -> int:
            return m

    empty = np.zeros((m, 0))
    covered: dict[int, np.ndarray] = {}  # per class: orthonormal basis Y_c of the sample directions reached
    total = 0
    table: list[int] = []
    pieces: list[tuple[Eigenspace, np.ndarray]] = []
    for space in spaces:
        if total == m:
            break  # the remaining bands keep nothing
        d = space.dimension
        columns: dict[int, list[int]] = {}  # the band's columns, by class, in classes not yet full
        for c in range(d):
            key = class_of(space.modes[c]) if space.modes else 0
            if covered.get(key, empty).shape[1] < capacity(key):
                columns.setdefault(key, []).append(c)
        kept = 0
        w = np.zeros((d, 0))
        sampled = space.rows(nodes) if columns else empty
        for key, cols in columns.items():
            y = covered.get(key, empty)
            part = sampled[:, cols]
            residual = part - y @ (y.T @ part)  # (I - Y Y^T) S Q_E
            u, sigma, wt = np.linalg.svd(residual, full_matrices=False)
            room = min(capacity(key) - y.shape[1], m - total)
            k = min(int(np.count_nonzero(sigma > rank_tol)), room)
            if k:
                block = np.zeros((d, k))
                block[cols, :] = wt[:k].T
                w = np.concatenate([w, block], axis=1)
                covered[key] = np.concatenate([y, u[:, :k]], axis=1)
                total += k
                kept += k
        if kept:
            pieces.append((space, w))
        table.append(kept)
    if total != m:
        raise ArithmeticError(f"{group.name}: the bands cover only {total} of {m} sample directions")
    return Plan(group, nodes, spaces, tuple(table), tuple(pieces))


# --------------------------------------------------------------------------------------------------
# Operators.


def _orbit_index(cayley: np.ndarray, nodes: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, int]:
    """For M[x, c] with H acting by (x, c) -> (h x, h c): an orbit label for every entry.

    ``columns[c]`` is the element of G that column c stands for (all of G for P, H's nodes for U).
    Every x is h t for one right-coset representative t of H in G and one h in H; the orbit of
    (x, c) holds exactly one pair (t, h^{-1} c), labelled coset(t) * n + index of h^{-1} c.
    """
    n = cayley.shape[0]
    inverse = inverse_table(cayley)
    coset = np.full(n, -1, dtype=np.int64)
    h_of = np.empty(n, dtype=np.int64)
    count = 0
    for t in range(n):  # x = h t for h in H: the right coset H t
        if coset[t] < 0:
            members = cayley[nodes, t]
            coset[members] = count
            h_of[members] = nodes
            count += 1
    dtype = np.int32 if count * n < 2**31 else np.int64
    label = np.empty((n, len(columns)), dtype=dtype)
    for x in range(n):
        label[x] = coset[x] * n + cayley[inverse[h_of[x]], columns]
    return label, count * n


def average_over_subgroup(matrix: np.ndarray, cayley: np.ndarray, nodes: np.ndarray,
                          columns: np.ndarray | None = None) -> np.ndarray:
    """mean over h in H of lambda(h) M lambda(h)^{-1}: the H-equivariant part of M, exactly equivariant.

    ``M`` is (n, n) (columns: G; for P) or (n, m) (columns: H's nodes, acted on by H; for U).
    Every entry of one H-orbit gets the very same float, so ``M[h x, h c] == M[x, c]`` holds
    bitwise. For an M that is equivariant up to rounding, the result differs from M by at most
    that rounding (the average is an orthogonal projection in the Frobenius norm).
    """
    cayley = np.asarray(cayley, dtype=np.int64)
    nodes = np.asarray(nodes, dtype=np.int64)
    columns = np.arange(cayley.shape[0]) if columns is None else np.asarray(columns, dtype=np.int64)
    label, size = _orbit_index(cayley, nodes, columns)
    sums = np.bincount(label.ravel(), weights=np.asarray(matrix, dtype=np.float64).ravel(), minlength=size)
    return sums[label] / len(nodes)


def assemble(p: Plan, progress: Callable[[str], None] | None = None) -> Solution:
    """P, D, U and B from a :class:`Plan`: B = [Q_E W_E ...], P = B B^T averaged over H, U likewise."""
    group, nodes = p.group, p.nodes
    say = progress or (lambda _: None)
    n, m = group.order, len(nodes)
    say("basis")
    basis = np.empty((n, m), dtype=np.float64)
    col = 0
    for space, w in p.pieces:
        basis[:, col:col + w.shape[1]] = space.vectors() @ w
        col += w.shape[1]
    say("projector")
    antialias = average_over_subgroup(basis @ basis.T, group.cayley, nodes)
    antialias += antialias.T  # bitwise symmetric, and still bitwise H-invariant
    antialias *= 0.5
    downsample = antialias[nodes, :].copy()
    say("reconstruction")
    upsample = np.linalg.solve(basis[nodes, :].T, basis.T).T  # B (S B)^{-1}
    upsample = average_over_subgroup(upsample, group.cayley, nodes, columns=nodes)
    return Solution(nodes, basis, antialias, downsample, upsample, p.bands)


def solve(
    group: FiniteGroup,
    nodes: np.ndarray,
    bands: Sequence | None = None,
    rank_tol: float = RANK_TOL,
    progress: Callable[[str], None] | None = None,
) -> Solution:
    """Anti-aliasing, sampling and reconstruction operators for sampling ``group`` on ``nodes``.

    Parameters
    ----------
    group : FiniteGroup
        G, with n elements.
    nodes : ndarray of int, shape (m,)
        Indices in G of the subgroup's elements, in the subgroup's own order.
    bands : optional
        Precomputed Laplacian eigenspaces (default: :func:`group_bands`, cached).
    progress : callable, optional
        Called with the name of each step as it starts.
    """
    return assemble(plan(group, nodes, bands, rank_tol), progress)
