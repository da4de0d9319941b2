"""C_N and D_N written down without escnn: tables, generators, names, subgroups, Laplacian bands.

Every closed form is compared with escnn (small N) or with a dense computation (eigh, the generic
walk); the large-N tests are cases that failed before the closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest

from gscli import _escnn
from gscli.groups import (
    identity_index,
    inverse_table,
    planar_element_name,
    planar_group,
    planar_subgroups,
    regular_representation,
)
from gscli.solver import (
    average_over_subgroup,
    group_bands,
    laplacian,
    laplacian_sparse,
    planar_bands,
    solve,
    spectral_bands,
)
from gscli.specs import GroupSpec

SMALL = [("C", n) for n in (1, 2, 3, 4, 6, 9, 12)] + [("D", n) for n in (1, 2, 3, 4, 5, 6, 8, 12)]


def _escnn_index(family: str, n: int, element) -> int:
    value = element.to("int")
    if family == "C":
        return int(value)
    flip, k = value
    return int(flip) * n + int(k)


@pytest.mark.parametrize(("family", "n"), SMALL, ids=[f"{f}{n}" for f, n in SMALL])
def test_planar_group_is_escnns_group(family: str, n: int) -> None:
    ours = planar_group(family, n)
    G = _escnn.escnn_group(GroupSpec(family, n))
    elements = list(G.elements)
    assert [_escnn_index(family, n, g) for g in elements] == list(range(ours.order))  # escnn's order is index order
    assert ours.identity == _escnn_index(family, n, G.identity)
    assert ours.generators == tuple(_escnn_index(family, n, g) for g in G.generators)
    for a, g in enumerate(elements):
        assert np.array_equal(np.round(np.asarray(G.regular_representation(g))), regular_representation(ours.cayley, a))
        flip, k = (0, g.to("int")) if family == "C" else g.to("int")
        rotation = "e" if k == 0 else "r" if k == 1 else f"r^{k}"
        expected = rotation if not flip else ("s" if k == 0 else f"{rotation} s")
        assert ours.element_names[a] == planar_element_name(a, n) == expected


@pytest.mark.parametrize(("family", "n"), SMALL, ids=[f"{f}{n}" for f, n in SMALL])
def test_planar_subgroups_are_escnns_subgroups(family: str, n: int) -> None:
    G = _escnn.escnn_group(GroupSpec(family, n))
    found = planar_subgroups(family, n)
    # every subgroup order is covered: C_M for each divisor, D_M for every axis
    divisors = [m for m in range(1, n + 1) if n % m == 0]
    assert len(found) == len(divisors) + (sum(n // m for m in divisors) if family == "D" else 0)
    for type_name, nodes, sg_id in found:
        H, inclusion, _ = G.subgroup(sg_id)
        assert H.order() == len(nodes)
        assert nodes.tolist() == [_escnn_index(family, n, inclusion(h)) for h in H.elements], (type_name, sg_id)
    for sub in _escnn.subgroups(GroupSpec(family, n)):  # H's table is escnn's H (D1 is escnn's C2)
        H, _, _ = G.subgroup(sub.escnn_id)
        for a, h in enumerate(H.elements):
            assert np.array_equal(np.round(np.asarray(H.regular_representation(h))),
                                  regular_representation(sub.cayley, a)), (sub.type, sub.escnn_id)


def test_planar_groups_do_not_ask_escnn(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(spec):
        raise AssertionError(f"escnn was asked for {spec}")

    monkeypatch.setattr(_escnn, "escnn_group", refuse)
    _escnn.load_group.cache_clear()
    _escnn.subgroups.cache_clear()
    try:
        spec = GroupSpec.parse("D2048")
        assert _escnn.load_group(spec).order == 4096
        subs = _escnn.subgroups(spec)
        assert len(subs) == 12 + sum(2048 // m for m in (2**k for k in range(12)))  # C_M and every D_M axis
    finally:
        _escnn.load_group.cache_clear()
        _escnn.subgroups.cache_clear()


def test_table_helpers_agree_with_the_definition() -> None:
    for family, n in SMALL:
        g = planar_group(family, n)
        e = identity_index(g.cayley)
        inv = inverse_table(g.cayley)
        assert e == 0 and all(g.cayley[a, inv[a]] == e == g.cayley[inv[a], a] for a in range(g.order))
    with pytest.raises(ValueError, match="identity"):
        identity_index(np.zeros((3, 3), dtype=np.int64))


# ----- bands -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["C", "D"])
def test_closed_form_bands_are_the_eigenspaces(family: str) -> None:
    for n in range(1, 41):
        group = planar_group(family, n)
        lap = laplacian(group)
        dense = spectral_bands(lap)
        closed = planar_bands(family, n)
        assert [q.shape[1] for _, q in dense] == [b.dimension for b in closed], f"{family}{n}"
        for (value, _), band in zip(dense, closed):
            q = band.vectors()
            assert abs(value - band.eigenvalue) <= 1e-12
            assert np.abs(q.T @ q - np.eye(band.dimension)).max() <= 1e-13
            assert np.abs(lap @ q - band.eigenvalue * q).max() <= 1e-12
        assert np.abs(laplacian_sparse(group).toarray() - lap).max() == 0


def test_band_coincidences_are_decided_exactly_over_the_supported_range() -> None:
    """In long double, planar_bands' bands are exactly the groups of equal eigenvalues, for every D_N
    gscli builds: merged eigenvalues agree to 1e-16 and distinct ones are more than 1e-11 apart."""
    pi = np.arccos(np.longdouble(-1))  # pi to long double precision
    worst_distinct, worst_merged = np.inf, 0.0
    for n in list(range(3, 64)) + [100, 120, 144, 360, 600, 907, 1008, 1024, 1200, 1260, 1680, 2016, 2048]:
        half = n // 2 + 1
        cycle = 2 - 2 * np.cos(2 * pi * np.arange(half, dtype=np.longdouble) / n)
        values = np.concatenate([cycle, cycle + 2])  # label f * half + k: sheet sign f, frequency k
        band_of = np.full(2 * half, -1)
        for index, band in enumerate(planar_bands("D", n)):
            for f, k, _ in band.modes:
                band_of[f * half + k] = index
        same = band_of[:, None] == band_of[None, :]
        diff = np.abs(values[:, None] - values[None, :])
        worst_merged = max(worst_merged, float(diff[same].max()))
        worst_distinct = min(worst_distinct, float(diff[~same].min()))
    assert worst_merged <= 1e-17
    assert worst_distinct > 1e-11


def test_close_but_distinct_eigenvalues_of_d907_are_separate_bands() -> None:
    bands = group_bands(planar_group("D", 907))
    assert len(bands) == 908 and all(b.dimension <= 2 for b in bands)
    values = np.array([b.eigenvalue for b in bands])
    gap = np.diff(values).min()
    assert 1e-9 < gap < 1e-7  # 4.4e-8: once merged by a 1e-8 relative tolerance


def test_eigh_bands_refuse_a_gap_they_cannot_tell_apart() -> None:
    lap = np.diag([0.0, 1.0, 1.0 + 3e-9, 2.0])
    with pytest.raises(ArithmeticError, match="cannot tell"):
        spectral_bands(lap)
    assert [q.shape[1] for _, q in spectral_bands(np.diag([0.0, 1.0, 1.0 + 1e-15, 2.0]))] == [1, 2, 1]


# ----- the walk and the H-average ---------------------------------------------------------------------

@pytest.mark.parametrize("family", ["C", "D"])
def test_class_by_class_walk_equals_the_dense_walk(family: str) -> None:
    for n in range(1, 17):
        group = planar_group(family, n)
        dense = spectral_bands(laplacian(group))
        for type_name, nodes, sg_id in planar_subgroups(family, n):
            fast = solve(group, nodes)
            slow = solve(group, nodes, dense)
            assert [b.kept for b in fast.bands] == [b.kept for b in slow.bands], (family, n, type_name, sg_id)
            assert np.abs(fast.antialias - slow.antialias).max() <= 1e-12, (family, n, type_name, sg_id)


@pytest.mark.parametrize(("group", "nodes"), [
    (("D", 8), np.array([0, 9])),          # D1 on the axis r s: not normal in D8
    (("D", 6), np.array([0, 2, 4, 7, 9, 11])),  # D3 with axis 1
    (("C", 12), np.array([0, 3, 6, 9])),
])
def test_average_over_subgroup_is_an_exact_projection(group, nodes, rng: np.random.Generator) -> None:
    g = planar_group(*group)
    n, m = g.order, len(nodes)
    a = average_over_subgroup(rng.standard_normal((n, n)), g.cayley, nodes)
    for h in nodes:  # bitwise invariant: A[h x, h y] == A[x, y]
        assert np.array_equal(a[np.ix_(g.cayley[h], g.cayley[h])], a)
    assert np.abs(average_over_subgroup(a, g.cayley, nodes) - a).max() <= 1e-15  # a projection
    u = average_over_subgroup(rng.standard_normal((n, m)), g.cayley, nodes, columns=nodes)
    position = {int(x): i for i, x in enumerate(nodes)}
    for h in nodes:
        cols = [position[int(g.cayley[h, x])] for x in nodes]
        moved = np.empty_like(u)
        moved[np.ix_(g.cayley[h], cols)] = u  # U[h x, h a] = U[x, a]
        assert np.array_equal(moved, u)
    # the mean of lambda(h) M lambda(h)^T, written out densely
    lam = [regular_representation(g.cayley, int(h)) for h in nodes]
    m0 = rng.standard_normal((n, n))
    assert np.abs(average_over_subgroup(m0, g.cayley, nodes) - sum(l @ m0 @ l.T for l in lam) / m).max() <= 1e-14


def test_d512_onto_c512_is_exactly_equivariant() -> None:
    """Refused before (downsample_equivariance 1.64e-12 > 1e-12): now every check holds at |G| = 1024."""
    from gscli.build import build_operator

    op = build_operator("D512", subgroup="C512")
    assert op.ok, [str(c) for c in op.checks if not c.passed]
    errors = {c.name: c.error for c in op.checks}
    assert errors["downsample_equivariance"] == 0.0 and errors["upsample_equivariance"] == 0.0
    d, nodes, cg, ch = op.solution.downsample, op.subgroup.nodes, op.group.cayley, op.subgroup.cayley
    for h in (1, 5, 511):  # D lambda_G(h) == lambda_H(h) D, bitwise, from the definition
        moved = np.empty_like(d)
        moved[ch[h]] = d
        assert np.array_equal(d[:, cg[nodes[h]]], moved)


@pytest.mark.slow
@pytest.mark.parametrize(("group", "subgroup"), [("C4096", "C2048"), ("D2048", "D1024")])
def test_largest_groups_build(group: str, subgroup: str) -> None:
    from gscli.build import build_operator

    op = build_operator(group, subgroup=subgroup)
    assert op.ok, [str(c) for c in op.checks if not c.passed]


# ----- building large groups: refused up front when it cannot fit, progress while it runs ----------------

def test_a_build_that_cannot_fit_in_memory_is_refused_before_anything_is_allocated(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import gscli.families.finite._build as b
    from gscli.build import build
    from gscli.cli import main
    from gscli.errors import SizeError

    need = b.estimate_build_memory(4096, 2048)
    assert 6 * 8 * 4096**2 < need < 3 * 10**9  # the dense operators and their checks: below the 3 GB goal
    monkeypatch.setattr(b, "available_memory", lambda: need - 1)
    monkeypatch.setattr(b, "plan", lambda *a, **k: pytest.fail("solved although it cannot fit"))
    with pytest.raises(SizeError, match=r"D2048 onto a subgroup of order 2048 needs about 1.\d GiB of memory .* only 1.\d GiB"):
        build("D2048", subgroup="D1024", out=tmp_path)
    result = CliRunner().invoke(main, ["build", "C4096", "--rate", "2", "--out", str(tmp_path)])
    assert result.exit_code == SizeError.exit_code == 2  # a request this machine cannot meet, like |G| > 4096
    assert "GiB of memory" in result.output and list(tmp_path.iterdir()) == []


def test_build_reports_its_steps_in_order(tmp_path) -> None:
    from gscli.build import BUILD_STEPS, build

    steps: list[str] = []
    build("D6", subgroup="D3", out=tmp_path, progress=steps.append)
    assert tuple(steps) == BUILD_STEPS
