"""The mathematics of DESIGN §3-§4, measured independently of gscli's own checker.

Every (group, subgroup) case is built through ``build_operator`` and then tested with dense
matrices: lambda_G from gscli's Cayley table *and* from escnn's own regular representation, the
sampling matrix S written out, the Laplacian rebuilt from the generators.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import built
from gscli import _escnn
from gscli.groups import regular_representation
from gscli.solver import laplacian, solve, spectral_bands
from gscli.specs import GroupSpec

# One table of cases covering every family; M odd and even for the cyclic ones.
CASES = [
    ("C8", "C4"), ("C9", "C3"), ("C12", "C3"), ("C16", "C8"), ("C16", "C4"), ("C10", "C5"), ("C6", "C6"), ("C7", "C1"),
    ("D8", "D4"), ("D12", "D6"), ("D12", "C12"), ("D6", "D3"), ("D5", "C5"), ("D4", "D1"), ("D6", "D2"), ("D3", "C1"),
    ("O", "T"), ("O", "C4"), ("O", "D4"), ("O", "D3"), ("O", "C2"), ("O", "O"),
    ("Oh", "O"), ("Oh", "Td"), ("Oh", "Th"), ("Oh", "D4h"), ("Oh", "C1"),
    ("I", "C5"), ("I", "T"), ("I", "D5"), ("I", "D3"),
    ("Ih", "I"), ("Ih", "Th"), ("Ih", "C5v"),
]
IDS = [f"{g}>{h}" for g, h in CASES]


def _lam(cayley: np.ndarray, g: int) -> np.ndarray:
    n = cayley.shape[0]
    lam = np.zeros((n, n))
    for x in range(n):
        lam[cayley[g, x], x] = 1.0  # lambda(g) e_x = e_{g x}
    return lam


@pytest.mark.parametrize(("group", "subgroup"), CASES, ids=IDS)
def test_operator_meets_design_section_4(group: str, subgroup: str) -> None:
    op = built(group, subgroup)
    s = op.solution
    n, m = op.group.order, op.subgroup.order
    assert (n, m) == (GroupSpec.parse(group).order, op.spec.subgroup.order)
    P, D, U, nodes = s.antialias, s.downsample, s.upsample, op.subgroup.nodes
    S = np.zeros((m, n))
    S[np.arange(m), nodes] = 1.0

    # projector onto an |H|-dimensional space
    assert np.abs(P - P.T).max() <= 1e-12
    assert np.abs(P @ P - P).max() <= 1e-12
    assert abs(np.trace(P) - m) <= 1e-10
    assert np.linalg.matrix_rank(P, tol=1e-8) == m
    # D = S P, exact reconstruction of bandlimited signals
    assert np.abs(D - S @ P).max() <= 1e-12
    assert np.abs(S @ U - np.eye(m)).max() <= 1e-10
    assert np.abs(U @ S @ P - P).max() <= 1e-10
    # H-equivariance for every h in H, with lambda_H from H's own table
    for h in range(m):
        lam_g = _lam(op.group.cayley, int(nodes[h]))
        lam_h = _lam(op.subgroup.cayley, h)
        assert np.abs(D @ lam_g - lam_h @ D).max() <= 1e-12, f"{group}>{subgroup}: D not equivariant at h={h}"
        assert np.abs(U @ lam_h - lam_g @ U).max() <= 1e-11, f"{group}>{subgroup}: U not equivariant at h={h}"
        # character of the regular representation of H
        assert abs(np.trace(P @ lam_g) - (m if h == op.subgroup.identity else 0)) <= 1e-9
    # bandlimited: P commutes with the Laplacian (rebuilt here from the generators)
    L = _laplacian_from_scratch(op.group.cayley, op.group.generators)
    assert np.abs(P @ L - L @ P).max() <= 1e-10
    # homomorphism, both tables
    for a in range(m):
        for b in range(m):
            assert op.group.cayley[nodes[a], nodes[b]] == nodes[op.subgroup.cayley[a, b]]


def _laplacian_from_scratch(cayley: np.ndarray, generators) -> np.ndarray:
    n = cayley.shape[0]
    A = np.zeros((n, n))
    for x in range(n):
        for s in generators:
            y = cayley[x, s]
            if y != x:
                A[x, y] = A[y, x] = 1.0
    return np.diag(A.sum(1)) - A


@pytest.mark.parametrize(("n", "m"), [(8, 4), (16, 8), (16, 4), (12, 3), (9, 3), (10, 5), (18, 6), (15, 5), (7, 7)])
def test_cyclic_operator_is_the_ideal_lowpass_then_stride(n: int, m: int, rng: np.random.Generator) -> None:
    op = built(f"C{n}", f"C{m}")
    x = rng.standard_normal((n, 5))
    # reference: numpy's real FFT, keep |k| < M/2, the cosine at k = M/2 for even M, then every R-th sample
    X = np.fft.rfft(x, axis=0)
    k = np.arange(X.shape[0])
    X[k > m / 2] = 0
    if m % 2 == 0 and m // 2 < X.shape[0]:
        X[m // 2] = X[m // 2].real
    y = np.fft.irfft(X, n=n, axis=0)[:: n // m]
    assert np.abs(op.solution.downsample @ x - y).max() <= 1e-12
    # and the samples reconstruct the low-passed signal exactly
    lowpassed = np.fft.irfft(X, n=n, axis=0)
    assert np.abs(op.solution.upsample @ (op.solution.downsample @ x) - lowpassed).max() <= 1e-12


def test_rate_one_is_the_identity() -> None:
    for group in ("C6", "D4", "O"):
        op = built(group, group)
        assert np.abs(op.solution.antialias - np.eye(op.group.order)).max() <= 1e-12
        assert np.abs(op.solution.upsample @ op.solution.downsample - np.eye(op.group.order)).max() <= 1e-12


@pytest.mark.parametrize("group", ["C7", "D3", "Oh"])
def test_trivial_subgroup_gives_the_mean_and_the_constant_extension(group: str) -> None:
    op = built(group, "C1")
    n = op.group.order
    assert np.abs(op.solution.downsample - np.full((1, n), 1.0 / n)).max() <= 1e-12
    assert np.abs(op.solution.upsample - np.ones((n, 1))).max() <= 1e-12


def test_oh_to_o_projects_onto_inversion_symmetric_signals() -> None:
    op = built("Oh", "O")
    G = _escnn.escnn_group(GroupSpec("Oh"))
    inv = op.group.inversion  # -I: the central element of order 2 outside O
    assert inv is not None and op.group.element_names[inv] == "-e"
    assert all(G.elements[inv] @ g == g @ G.elements[inv] for g in G.elements)
    lam_inv = regular_representation(op.group.cayley, inv)
    expected = (np.eye(48) + lam_inv) / 2
    assert np.abs(op.solution.antialias - expected).max() <= 1e-12


@pytest.mark.parametrize(("group", "subgroup"), [("D12", "D6"), ("O", "T"), ("I", "C5"), ("C16", "C4")])
def test_projector_does_not_depend_on_the_basis_inside_a_band(group: str, subgroup: str, rng: np.random.Generator) -> None:
    op = built(group, subgroup)
    rotated = []
    for value, q in spectral_bands(laplacian(op.group)):
        k = q.shape[1]
        rot, _ = np.linalg.qr(rng.standard_normal((k, k)))
        rotated.append((value, q @ rot))
    again = solve(op.group, op.subgroup.nodes, tuple(rotated))
    assert np.abs(again.antialias - op.solution.antialias).max() <= 1e-12
    assert np.abs(again.upsample - op.solution.upsample).max() <= 1e-10


def test_bands_report_dimensions_and_kept_counts() -> None:
    op = built("D12", "D6")
    bands = op.solution.bands
    assert sum(b.dimension for b in bands) == 24
    assert sum(b.kept for b in bands) == 12
    assert all(0 <= b.kept <= b.dimension for b in bands)
    assert [b.eigenvalue for b in bands] == sorted(b.eigenvalue for b in bands)
    # least aliasing: the kept dimensions fill the lowest bands first, skipping only aliased directions
    L = _laplacian_from_scratch(op.group.cayley, op.group.generators)
    assert abs(np.trace(op.solution.antialias @ L) - op.solution.cost) <= 1e-9


# escnn's own view of the groups: tables and subgroups must agree with it.

@pytest.mark.parametrize("group", ["C1", "C2", "C6", "D1", "D2", "D5", "D6", "O", "I"])
def test_cayley_table_is_escnns_regular_representation(group: str) -> None:
    spec = GroupSpec.parse(group)
    G = _escnn.escnn_group(spec)
    ours = _escnn.load_group(spec)
    assert G.elements[ours.identity] == G.identity
    for i, g in enumerate(G.elements):
        assert np.array_equal(np.round(np.asarray(G.regular_representation(g))), regular_representation(ours.cayley, i)), (
            f"{group}: lambda({g}) differs from escnn's"
        )


@pytest.mark.parametrize("group", ["Oh", "Ih"])
def test_direct_product_tables_agree_with_escnns_product(group: str) -> None:
    # escnn's regular representation of O_h / I_h is slow to build; its product is not: check every
    # right multiplication by a generator (which, with the table being a group, pins every product)
    spec = GroupSpec.parse(group)
    G = _escnn.escnn_group(spec)
    ours = _escnn.load_group(spec)
    elements = list(G.elements)
    assert elements[ours.identity] == G.identity
    for s in ours.generators:
        for a in range(ours.order):
            assert elements[ours.cayley[a, s]] == elements[a] @ elements[s]
    assert ours.identity == 3  # DESIGN §2: the identity is at index 3 for the point groups


@pytest.mark.parametrize(("group", "subgroup"), [("D12", "D6"), ("D12", "C12"), ("C16", "C4"), ("D8", "D1"), ("O", "D4"),
                                                 ("O", "C3"), ("I", "D5"), ("Oh", "O"), ("Ih", "I")])
def test_subgroup_nodes_are_escnns_own_order(group: str, subgroup: str) -> None:
    """lambda_H from escnn's own H: the stored order of H is escnn's, so D intertwines escnn's representations."""
    op = built(group, subgroup)
    G = _escnn.escnn_group(op.spec.group)
    kind, k = subgroup[0], subgroup[1:]
    from escnn import group as eg

    H = {"C": lambda: eg.cyclic_group(int(k)), "D": lambda: eg.dihedral_group(int(k)),
         "O": eg.octa_group, "I": eg.ico_group}[kind]()
    if op.spec.group.planar:
        Hs, inclusion, _ = G.subgroup(op.subgroup.escnn_id)
        assert Hs.order() == H.order()
        for j, h in enumerate(Hs.elements):
            assert G.elements[op.subgroup.nodes[j]] == inclusion(h)
    D = op.solution.downsample
    for j, h in enumerate(H.elements):
        lam_h = np.asarray(H.regular_representation(h))
        lam_g = regular_representation(op.group.cayley, int(op.subgroup.nodes[j]))
        assert np.abs(D @ lam_g - lam_h @ D).max() <= 1e-12


def test_point_group_subgroup_census() -> None:
    """Known counts: S4 ~ O has 30 subgroups, A5 ~ I has 59, S4 x C2 ~ O_h has 98."""
    from collections import Counter

    counts = {g: len(_escnn.subgroups(GroupSpec.parse(g))) for g in ("O", "I", "Oh")}
    assert counts == {"O": 30, "I": 59, "Oh": 98}
    types = Counter(h.type for h in _escnn.subgroups(GroupSpec("O")))
    assert types == Counter({"C1": 1, "C2": 9, "C3": 4, "D2": 4, "C4": 3, "D3": 4, "D4": 3, "T": 1, "O": 1})
    oh = Counter(h.type for h in _escnn.subgroups(GroupSpec("Oh")))
    # mirror planes of the cube: 3 + 6; O_h's three index-2 subgroups are O, T_d and T_h
    assert oh["Cs"] == 9 and oh["O"] == oh["Td"] == oh["Th"] == 1 and oh["Ci"] == 1
    ih = Counter(h.type for h in _escnn.subgroups(GroupSpec("Ih")))
    assert ih["Cs"] == 15 and ih["C5"] == 6 and ih["C3"] == 10 and ih["T"] == 5 and ih["I"] == 1


def test_t_inside_o_is_the_first_twelve_elements() -> None:
    op = built("O", "T")
    assert sorted(op.subgroup.nodes.tolist()) == list(range(12))


@pytest.mark.parametrize("group", ["O", "Oh", "I", "Ih"])
def test_element_names_are_distinct_and_readable(group: str) -> None:
    g = _escnn.load_group(GroupSpec.parse(group))
    names = g.element_names
    assert len(set(names)) == g.order and names[g.identity] == "e"
    assert not any("-0.000" in n for n in names)
    for name, m in zip(names, g.matrices):
        if name not in ("e", "-e"):
            angle = float(name.lstrip("-(").split("°")[0])
            r = m * np.sign(np.linalg.det(m))
            assert abs(np.cos(np.radians(angle)) - (np.trace(r) - 1) / 2) <= 1e-9


@pytest.mark.parametrize(("group", "ks"), [("O", (2, 3, 4)), ("I", (2, 3, 5))])
def test_point_group_rotation_subgroups_follow_escnns_embedding(group: str, ks: tuple[int, ...]) -> None:
    """Where escnn embeds C_k in O or I itself (``G.subgroup((False, k))``: rotations about its axis), gscli's
    C_k, and the rotations of its D_k (k >= 3, where they are the only elements of order k), list H in the
    order of escnn's inclusion map: j -> r^j with r escnn's generator, not its inverse."""
    spec = GroupSpec.parse(group)
    G = _escnn.escnn_group(spec)
    elements = list(G.elements)
    found = 0
    for k in ks:
        H, inclusion, _ = G.subgroup((False, k))
        expected = [elements.index(inclusion(h)) for h in H.elements]
        assert len(set(expected)) == k and expected[0] == _escnn.load_group(spec).identity
        for sub in _escnn.subgroups(spec):
            if sub.type == f"C{k}" or (k >= 3 and sub.type == f"D{k}"):
                rotations = sub.nodes[:k].tolist()
                if set(rotations) == set(expected):
                    assert rotations == expected, f"{group} {sub.type} ({sub.source}): {rotations} != escnn's {expected}"
                    found += 1
    assert found == len(ks) + sum(k >= 3 for k in ks)  # every escnn C_k matched, and the D_k around it
