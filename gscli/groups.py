"""Finite groups as tables: pure numpy, no escnn.

A :class:`FiniteGroup` holds what the operator mathematics needs from a group: its Cayley table in
escnn's element order, the identity, the generators, readable element names and (for point groups)
the 3x3 orthogonal matrix of each element. :mod:`gscli._escnn` builds these from escnn once; all
the rest of gscli works on the tables.

Convention (DESIGN §2): a signal on G is a vector ``f`` with ``f[i] = f(g_i)``; the left-regular
action is ``lambda(g) e_x = e_{g x}``, i.e. ``(lambda(g) f)(x) = f(g^{-1} x)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = [
    "FiniteGroup",
    "Subgroup",
    "identity_index",
    "inverse_table",
    "sampling_matrix",
    "planar_element_name",
    "planar_group",
    "planar_subgroups",
    "is_signed_permutation",
    "closure",
    "enumerate_subgroups",
    "classify_point_group",
    "induced_table",
    "homomorphism_defects",
    "cyclic_table",
    "dihedral_table",
    "regular_representation",
]


def identity_index(cayley: np.ndarray) -> int:
    """Index of the identity in a Cayley table: the one row that maps every x to x.

    Raises ``ValueError`` when no row, or more than one, is the identity row.
    """
    cayley = np.asarray(cayley)
    rows = np.nonzero((cayley == np.arange(cayley.shape[0])[None, :]).all(axis=1))[0]
    if len(rows) != 1:
        raise ValueError("the Cayley table has no unique identity row")
    return int(rows[0])


def inverse_table(cayley: np.ndarray, identity: int | None = None) -> np.ndarray:
    """``inverse[a]`` is the index of ``g_a^{-1}`` (int64, shape (n,)): the b with ``cayley[a, b] == e``."""
    cayley = np.asarray(cayley)
    e = identity_index(cayley) if identity is None else int(identity)
    rows, cols = np.nonzero(cayley == e)
    inverse = np.empty(cayley.shape[0], dtype=np.int64)
    inverse[rows] = cols
    return inverse


def sampling_matrix(n: int, nodes: np.ndarray) -> np.ndarray:
    """S, shape (m, n), float64: ``S[i, nodes[i]] = 1``, so ``(S f)[i] = f(h_i)``."""
    nodes = np.asarray(nodes, dtype=np.int64)
    s = np.zeros((len(nodes), n), dtype=np.float64)
    s[np.arange(len(nodes)), nodes] = 1.0
    return s


def regular_representation(cayley: np.ndarray, g: int) -> np.ndarray:
    """Permutation matrix ``lambda(g)`` with ``lambda(g)[g x, x] = 1`` (float64, n x n)."""
    n = cayley.shape[0]
    lam = np.zeros((n, n), dtype=np.float64)
    lam[cayley[g], np.arange(n)] = 1.0
    return lam


@dataclass(frozen=True, eq=False)
class FiniteGroup:
    """A finite group given by its Cayley table.

    Parameters
    ----------
    name : str
        The group spec, e.g. ``"D12"``.
    cayley : ndarray of int64, shape (n, n)
        ``cayley[a, b]`` is the index of the product ``g_a g_b``.
    identity : int
        Index of the identity element.
    generators : tuple of int
        Indices of the generators (escnn's ``G.generators``); they define the Cayley graph.
    element_names : tuple of str
        A readable name of every element, e.g. ``"r^2 s"`` or ``"120° about (1,1,1)"``.
    matrices : ndarray of float64, shape (n, d, d), optional
        A faithful orthogonal representation (3x3 for point groups), used to classify subgroups.
    """

    name: str
    cayley: np.ndarray
    identity: int
    generators: tuple[int, ...]
    element_names: tuple[str, ...]
    matrices: np.ndarray | None = field(default=None, repr=False)

    @property
    def order(self) -> int:
        return int(self.cayley.shape[0])

    @cached_property
    def inverse(self) -> np.ndarray:
        """``inverse[a]`` is the index of ``g_a^{-1}``."""
        return inverse_table(self.cayley, self.identity)

    @cached_property
    def planar(self) -> tuple[str, int] | None:
        """``("C", N)`` / ``("D", N)`` when this is C_N / D_N exactly as :func:`planar_group` writes it
        (name, table, identity and generators), else None. Closed forms apply only then."""
        name = self.name
        if len(name) < 2 or name[0] not in "CD" or not name[1:].isdigit():
            return None
        family, n = name[0], int(name[1:])
        if n < 1 or self.order != (n if family == "C" else 2 * n) or self.identity != 0:
            return None
        if tuple(int(g) for g in self.generators) != _planar_generators(family, n):
            return None
        table = cyclic_table(n) if family == "C" else dihedral_table(n)
        return (family, n) if np.array_equal(self.cayley, table) else None

    def regular_representation(self, g: int) -> np.ndarray:
        """The permutation matrix ``lambda(g)`` (float64, n x n)."""
        return regular_representation(self.cayley, g)

    def element_order(self, g: int) -> int:
        k, x = 1, g
        while x != self.identity:
            x = int(self.cayley[g, x])
            k += 1
        return k

    @cached_property
    def inversion(self) -> int | None:
        """Index of the central inversion ``-I`` of a point group, if the group contains it."""
        if self.matrices is None or self.matrices.shape[1] != 3:
            return None
        hits = np.nonzero(np.all(np.abs(self.matrices + np.eye(3)) < 1e-9, axis=(1, 2)))[0]
        return int(hits[0]) if len(hits) else None


@dataclass(frozen=True, eq=False)
class Subgroup:
    """A subgroup H of G, embedded by ``nodes``.

    ``nodes[i]`` is the index in G of the i-th element of H, in H's own element order (escnn's order
    where escnn has the group, see ``source``). ``cayley`` is H's table in that order; the embedding
    is a homomorphism: ``G.cayley[nodes[a], nodes[b]] == nodes[H.cayley[a, b]]``.
    """

    type: str
    nodes: np.ndarray
    cayley: np.ndarray
    identity: int
    source: str
    escnn_id: object = None  # escnn's subgroup id in G (planar groups), for gspace.restrict

    @property
    def order(self) -> int:
        return int(len(self.nodes))

    @cached_property
    def key(self) -> tuple[int, ...]:
        """The set of G-indices, sorted: identifies the subgroup regardless of element order."""
        return tuple(sorted(int(i) for i in self.nodes))


def cyclic_table(n: int) -> np.ndarray:
    """Cayley table of C_N in escnn's order (r^k at index k)."""
    k = np.arange(n, dtype=np.int64)
    table = np.add.outer(k, k)
    table[table >= n] -= n
    return table


def dihedral_table(n: int) -> np.ndarray:
    """Cayley table of D_N in escnn's order: index f*N + k is r^k s^f.

    (r^a s^f)(r^b s^e) = r^(a + (-1)^f b) s^(f+e).
    """
    plus = cyclic_table(n)  # r^i r^j = r^(i+j), and r^i (r^j s) = r^(i+j) s
    k = np.arange(n, dtype=np.int64)
    minus = np.subtract.outer(k, k)
    minus[minus < 0] += n  # (r^i s) r^j = r^(i-j) s, and (r^i s)(r^j s) = r^(i-j)
    table = np.empty((2 * n, 2 * n), dtype=np.int64)
    table[:n, :n] = plus
    table[:n, n:] = plus + n
    table[n:, :n] = minus + n
    table[n:, n:] = minus
    return table


def planar_element_name(index: int, n: int) -> str:
    """escnn's element ``index`` of C_N or D_N, readable: ``e``, ``r``, ``r^k``, ``s``, ``r^k s``.

    Index k < N is the rotation r^k; index N + k (dihedral only) is the reflection r^k s.
    """
    k = index % n
    rotation = "e" if k == 0 else "r" if k == 1 else f"r^{k}"
    if index < n:
        return rotation
    return "s" if k == 0 else f"{rotation} s"


def planar_group(family: str, n: int) -> FiniteGroup:
    """C_N (``family="C"``) or D_N (``"D"``) in escnn's element order, written down without escnn.

    escnn 1.0.11: C_N has r^k at index k and generators (r,) (none for C_1); D_N has r^k at k and
    r^k s at N + k, generators (r, s) (only (s,) for D_1); the identity is index 0. The tests
    compare all of this with escnn for small N.
    """
    if family not in ("C", "D") or n < 1:
        raise ValueError(f"planar_group needs family 'C' or 'D' and N >= 1, got {family!r}, {n!r}")
    table = cyclic_table(n) if family == "C" else dihedral_table(n)
    names = tuple(planar_element_name(i, n) for i in range(table.shape[0]))
    group = FiniteGroup(f"{family}{n}", table, 0, _planar_generators(family, n), names)
    group.__dict__["planar"] = (family, n)  # true by construction: skip the O(n^2) comparison
    return group


def _planar_generators(family: str, n: int) -> tuple[int, ...]:
    """escnn's generators of C_N (r; none for C_1) and D_N (r, s; only s for D_1) as element indices."""
    if family == "C":
        return (1,) if n > 1 else ()
    return (1, n) if n > 1 else (1,)


def planar_subgroups(family: str, n: int, order: int | None = None) -> list[tuple[str, np.ndarray, object]]:
    """Every subgroup of C_N or D_N that escnn names, as ``(type, nodes, escnn id)``, written down without escnn.

    C_N holds one C_M for every divisor M of N (escnn id M); D_N holds C_M (id ``(None, M)``) and
    D_M for every reflection axis a in 0..N/M - 1 (id ``(a, M)``). With R = N/M, the nodes, in
    escnn's order of H, are r^{R k} (k < M) and, for D_M, then r^{a + R k} s (index N + a + R k).
    Ordered as escnn's enumeration: by M, then C_M before the D_M copies, by axis.
    """
    found: list[tuple[str, np.ndarray, object]] = []
    for m in range(1, n + 1):
        if n % m:
            continue
        rate = n // m
        rotations = rate * np.arange(m, dtype=np.int64)
        if order in (None, m):
            found.append((f"C{m}", rotations, m if family == "C" else (None, m)))
        if family == "D" and order in (None, 2 * m):
            for axis in range(rate):
                found.append((f"D{m}", np.concatenate([rotations, n + axis + rotations]), (axis, m)))
    return found


def is_signed_permutation(matrix: np.ndarray, atol: float = 1e-9) -> bool:
    """Whether a square matrix is, within ``atol``, a signed permutation matrix.

    For the 2x2 action of an element of C_N / D_N on the plane: exactly the rotations by multiples
    of 90 degrees and the flips on axes at multiples of 45 degrees, which move the pixel grid onto
    itself (no interpolation).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        return False
    rounded = np.rint(matrix)
    ones = np.ones(matrix.shape[0])
    return bool(np.abs(matrix - rounded).max(initial=0.0) < atol and np.array_equal(np.abs(rounded).sum(axis=0), ones)
                and np.array_equal(np.abs(rounded).sum(axis=1), ones))


def closure(cayley: np.ndarray, generators, identity: int | None = None) -> frozenset[int]:
    """The subgroup generated by ``generators`` (indices): every product of generators.

    In a finite group the inverses are positive powers, so right-multiplying by the generators,
    starting from the identity, reaches the whole generated subgroup.
    """
    gens = [int(g) for g in generators]
    array = np.asarray(cayley)
    if identity is None:
        identity = identity_index(array)
    right = array[:, gens].tolist()  # only the columns of the generators: x -> x s, for s in gens
    seen = {int(identity)}
    stack = [int(identity)]
    while stack:
        x = stack.pop()
        for y in right[x]:
            if y not in seen:
                seen.add(y)
                stack.append(y)
    return frozenset(seen)


def enumerate_subgroups(group: FiniteGroup) -> list[frozenset[int]]:
    """Every subgroup of ``group``, as sets of element indices, sorted by (order, sorted elements).

    Every subgroup is generated by its cyclic subgroups, so joining cyclic subgroups into the
    subgroups found so far, until nothing new appears, finds them all.
    """
    table = group.cayley
    e = group.identity
    cyclic: dict[frozenset[int], int] = {}
    for g in range(group.order):
        cyclic.setdefault(closure(table, [g], e), g)
    found: dict[frozenset[int], tuple[int, ...]] = {c: (g,) for c, g in cyclic.items()}
    frontier = dict(found)
    while frontier:
        new: dict[frozenset[int], tuple[int, ...]] = {}
        for a, gens in frontier.items():
            for g in cyclic.values():
                if g in a:
                    continue
                joined = closure(table, gens + (g,), e)
                if joined not in found and joined not in new:
                    new[joined] = gens + (g,)
        found.update(new)
        frontier = new
    return sorted(found, key=lambda s: (len(s), sorted(s)))


def _proper_type(group: FiniteGroup, elements: frozenset[int]) -> str:
    """Type of a group of rotations: C<n>, D<n>, T, O or I."""
    n = len(elements)
    if n == 1:
        return "C1"
    if any(group.element_order(g) == n for g in elements):
        return f"C{n}"
    if n == 12:
        return "T"
    if n == 24:
        return "O"
    if n == 60:
        return "I"
    return f"D{n // 2}"


def classify_point_group(group: FiniteGroup, elements: frozenset[int]) -> str:
    """Schoenflies name of a finite subgroup of O(3), e.g. ``C4``, ``D3d``, ``Td``, ``Oh``.

    The name follows from the rotation subgroup K+ (its type), whether the inversion -I is in the
    group, and otherwise the type of the rotation group K+ ∪ {-g : g improper}.
    """
    if group.matrices is None:
        raise ValueError(f"group {group.name} has no matrices to classify subgroups with")
    det = np.linalg.det(group.matrices)
    proper = frozenset(g for g in elements if det[g] > 0)
    base = _proper_type(group, proper)
    if proper == elements:
        return base
    inv = group.inversion
    kind, k = base[0], int(base[1:]) if base[1:].isdigit() else 0
    if inv is not None and inv in elements:
        if base == "C1":
            return "Ci"
        if kind == "C":
            return f"C{k}h" if k % 2 == 0 else f"S{2 * k}"
        if kind == "D":
            return f"D{k}h" if k % 2 == 0 else f"D{k}d"
        return base + "h"  # Th, Oh, Ih
    assert inv is not None, "improper elements without an inversion in the parent group"
    doubled = proper | frozenset(int(group.cayley[inv, g]) for g in elements - proper)
    big = _proper_type(group, doubled)
    if base == "C1":
        return "Cs"
    if kind == "C" and big[0] == "C":
        return f"C{k}h" if k % 2 else f"S{2 * k}"
    if kind == "C":
        return f"C{k}v"
    if kind == "D":
        return f"D{k}h" if k % 2 else f"D{k}d"
    return "Td"


def induced_table(cayley: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Cayley table of the subgroup ``nodes`` (in that order), induced from G's table.

    Raises ``ValueError`` if ``nodes`` is not closed under the product.
    """
    position = np.full(cayley.shape[0], -1, dtype=np.int64)
    position[nodes] = np.arange(len(nodes))
    table = position[cayley[np.ix_(nodes, nodes)]]
    if (table < 0).any():
        raise ValueError("the nodes are not closed under the group product")
    return table


def homomorphism_defects(cayley_g: np.ndarray, cayley_h: np.ndarray, nodes: np.ndarray) -> int:
    """Number of pairs (a, b) of H with ``nodes[a] nodes[b] != nodes[a b]`` (0 for a homomorphism)."""
    cayley_g, cayley_h, nodes = (np.asarray(a, dtype=np.int64) for a in (cayley_g, cayley_h, nodes))
    lhs = cayley_g[np.ix_(nodes, nodes)]
    rhs = nodes[cayley_h]
    return int(np.count_nonzero(lhs != rhs))


def rotation_name(m: np.ndarray) -> str:
    """Readable name of an orthogonal 3x3 matrix: ``e``, ``-e``, ``90° about (0,0,1)``, ``-(...)``."""
    det = float(np.linalg.det(m))
    r = m * np.sign(det)
    prefix = "" if det > 0 else "-"
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.degrees(np.arccos(cos)))
    if angle < 1e-6:
        return "e" if det > 0 else "-e"
    if abs(angle - 180.0) < 1e-6:
        sym = (r + np.eye(3)) / 2.0
        axis = sym[:, int(np.argmax(np.linalg.norm(sym, axis=0)))]
    else:
        axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    axis = axis / np.linalg.norm(axis)
    lead = axis[np.nonzero(np.abs(axis) > 1e-9)[0][0]]
    if lead < 0:
        axis, angle = -axis, (360.0 - angle) % 360.0
    if abs(angle - 180.0) < 1e-6:
        angle = 180.0
    small = np.abs(axis[np.abs(axis) > 1e-9]).min()
    scaled = axis / small
    if np.allclose(scaled, np.round(scaled), atol=1e-6):
        text = ",".join(str(int(v)) for v in np.round(scaled))
    else:
        text = ",".join(f"{0.0 if abs(v) < 5e-4 else v:.3f}" for v in axis)  # no "-0.000"
    body = f"{angle:.0f}° about ({text})"
    return f"{prefix}({body})" if prefix else body
