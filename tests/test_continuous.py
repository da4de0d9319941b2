"""Continuous groups (DESIGN §9): sampling band-limited SO(2), O(2), SO(3), O(3) fields on finite subgroups.

Every check has a negative control: a wrong subgroup embedding, a transposed basis, a dropped band
and slightly perturbed operators must each be caught.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gscli.continuous import ContinuousGroupSpec, ContinuousOperatorSpec
from gscli.errors import FormatError, SizeError, SpecError

pytest.importorskip("escnn")

TOL = 1e-12
CASES = ["SO2_L5>C8", "SO2_L5>C7", "SO2_L2>C8", "O2_L4>D6", "O2_L3>C5", "SO3_L3>O", "SO3_L2>D3", "O3_L3>Oh"]


@pytest.fixture(scope="module")
def built():
    from gscli.continuous import build_continuous

    cache: dict = {}

    def get(spec: str):
        if spec not in cache:
            cache[spec] = build_continuous(spec)
        return cache[spec]

    return get


def _sampling(spec: str):
    from gscli import _escnn_continuous as _escnn

    return _escnn.sampling(ContinuousOperatorSpec.parse(spec))


def _named(checks, name):
    (found,) = [c for c in checks if c.name == name]
    return found


# ------------------------------------------------------------------------------------------------
# Specs and bad input


def test_spec_round_trip():
    for text in ["SO3_L3>O", "SO2_L5>C8", "O2_L4>D6", "SO3_L4>I", "O3_L3>Oh", "O2_L2>C3"]:
        spec = ContinuousOperatorSpec.parse(text)
        assert str(spec) == text and ContinuousOperatorSpec.parse(str(spec)) == spec
        assert ContinuousOperatorSpec.parse(spec.stem) == spec
    assert ContinuousOperatorSpec.parse("SO3_L3>O").stem == "SO3_L3-O"
    assert ContinuousGroupSpec.parse("SO3_L2").dimension == 35  # DESIGN §9


@pytest.mark.parametrize("text, words", [
    ("SO2_L5>D4", ["D4", "not a subgroup of SO(2)"]),
    ("SO3_L-1>O", ["-1", "negative"]),
    ("SO3_L2.5>O", ["2.5", "not an integer"]),
    ("SU2_L3>O", ["SU2", "allowed: SO2, O2, SO3, O3"]),
    ("SO3_L3>Oh", ["Oh", "inversion"]),
    ("SO3_L3>T", ["T", "NotImplementedError"]),
    ("O3_L3>C4", ["C4", "O(3)"]),
    ("SO3_L3", ["GROUP>SUBGROUP"]),
])
def test_bad_specs_one_line(text, words):
    with pytest.raises(SpecError) as info:
        ContinuousOperatorSpec.parse(text)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message
    assert info.value.exit_code == 2


def test_huge_L_refused_with_memory_estimate():
    with pytest.raises(SizeError) as info:
        ContinuousOperatorSpec.parse("SO3_L100>O")
    assert "GiB" in str(info.value) and "L <= 13" in str(info.value) and info.value.exit_code == 2
    ContinuousOperatorSpec.parse("SO3_L13>O")  # the largest one allowed parses


def test_rank_deficient_refused_with_smallest_L(tmp_path):
    from gscli.continuous import build_continuous

    with pytest.raises(SpecError) as info:
        build_continuous("SO3_L2>O")
    message = str(info.value)
    assert "rank 23" in message and "L = 3" in message and "\n" not in message  # DESIGN §9: rank 23 at L = 2
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# The sampling matrix against escnn


@pytest.mark.parametrize("spec", ["SO2_L5>C8", "O2_L4>D6", "SO3_L3>O", "O3_L2>Oh"])
def test_sampling_matches_fourierpointwise(spec):
    from gscli import _escnn_continuous as _escnn

    smp = _sampling(spec)
    _, _, _, images = _escnn.subgroup(smp.spec)
    reference = _escnn.fourier_pointwise_matrix(smp.spec.group, images)
    assert np.abs(smp.sampling - reference).max() <= TOL
    # escnn's default normalize=True divides every sample by sqrt(dim)
    normalized = _escnn.fourier_pointwise_matrix(smp.spec.group, images, normalize=True)
    assert np.abs(smp.sampling / np.sqrt(smp.dimension) - normalized).max() <= TOL
    # negative control: another element order is not escnn's sampling of H
    assert np.abs(smp.sampling[::-1] - reference).max() > 1e-3


def test_representation_is_escnn_bl_regular():
    from gscli import _escnn_continuous as _escnn

    for spec in ["O2_L3>D4", "SO3_L3>O", "O3_L2>Oh"]:
        smp = _sampling(spec)
        group, _, _, images = _escnn.subgroup(smp.spec)
        rep = group.bl_regular_representation(smp.spec.group.L)
        for i, g in enumerate(images):
            assert np.abs(smp.representation(i) - rep(g)).max() <= TOL, (spec, i)


def test_sampling_of_random_elements_matches_fourierpointwise():
    from gscli import _escnn_continuous as _escnn

    group = ContinuousGroupSpec.parse("SO3_L3")
    elements = _escnn.random_elements(group, 7, seed=0)
    rows = _escnn.group_sampling_row(group, elements)
    assert np.abs(rows - _escnn.fourier_pointwise_matrix(group, elements)).max() <= TOL


# ------------------------------------------------------------------------------------------------
# Bands kept (independent facts from DESIGN §9)


@pytest.mark.parametrize("spec, kept", [
    ("SO3_L3>O", [1, 9, 13, 1]),
    ("SO3_L4>I", [1, 9, 25, 25, 0]),
    ("SO2_L5>C8", [1, 2, 2, 2, 1, 0]),
])
def test_kept_per_band(built, spec, kept):
    op = built(spec)
    assert [b.kept for b in op.bands] == kept


# ------------------------------------------------------------------------------------------------
# Every guarantee, with negative controls


@pytest.mark.parametrize("spec", CASES)
def test_all_checks_pass(built, spec):
    op = built(spec)
    checks = op.recheck()
    assert all(c.passed for c in checks), [str(c) for c in checks if not c.passed]
    assert _named(checks, "projector_rank").passed
    stored = {c.name for c in op.checks}
    assert "sampling_matches_escnn" in stored and all(c.passed for c in op.checks)
    m, dim = op.order, op.dimension
    assert op.mode == ("antialias" if m <= dim else "no-antialias")
    p = op["antialias"]
    assert abs(np.trace(p) - min(m, dim)) < 1e-9


def _perturbed(op, **arrays):
    return dataclasses.replace(op, arrays={**op.arrays, **arrays})


@pytest.mark.parametrize("spec", ["SO2_L5>C8", "SO3_L3>O", "O2_L4>D6"])
def test_wrong_subgroup_embedding_fails(built, spec):
    """H's images in G permuted (conjugated by a transposition of two elements): equivariance must fail."""
    op = built(spec)
    perm = np.arange(op.order)
    perm[[1, 2]] = perm[[2, 1]]
    q = op.layout
    images = op["irrep_images"][perm]
    mats = op["element_matrices"][perm]
    # re-derive S from the permuted embedding, as a build with that embedding would
    s = op["sampling"][perm]
    bad = _perturbed(op, irrep_images=images, element_matrices=mats, sampling=s, downsample=s @ op["antialias"])
    checks = bad.recheck()
    failed = {c.name for c in checks if not c.passed}
    assert {"downsample_equivariance", "subgroup_homomorphism"} <= failed, failed
    del q


def test_conjugated_embedding_fails(built):
    """H conjugated in G by a generic rotation (another copy of O): not the subgroup of the file."""
    from scipy.spatial.transform import Rotation

    op = built("SO3_L3>O")
    r = Rotation.from_euler("xyz", [0.3, 0.2, 0.1]).as_matrix()
    mats = np.einsum("ij,ajk,lk->ail", r, op["element_matrices"], r)
    # the homomorphism still holds (conjugation is an automorphism) ...
    bad = _perturbed(op, element_matrices=mats)
    assert _named(bad.recheck(), "subgroup_homomorphism").passed
    # ... but the samples are no longer escnn's samples on its O
    from gscli import _escnn_continuous as _escnn

    group = _escnn.escnn_group(op.spec.group)
    elements = [group.element(m, "MAT") for m in mats]
    s = _escnn.group_sampling_row(op.spec.group, elements)
    checks = _perturbed(op, sampling=s).recheck(reference=op["sampling"])
    assert not _named(checks, "sampling_matches_escnn").passed
    assert not _named(checks, "downsample_is_sampled_projector").passed


def test_transposed_basis_fails(built):
    """Coefficients read with each irrep block transposed (rows for columns): S is no longer escnn's."""
    op = built("SO3_L3>O")
    q = op.layout
    s = op["sampling"].copy()
    for off, d, c in zip(q.offsets, q.sizes, q.copies):
        block = s[:, off:off + d * c].reshape(-1, c, d)
        s[:, off:off + d * c] = np.transpose(block, (0, 2, 1)).reshape(-1, d * c)
    from gscli import _escnn_continuous as _escnn

    _, _, _, images = _escnn.subgroup(op.spec)
    reference = _escnn.fourier_pointwise_matrix(op.spec.group, images)
    assert np.abs(op["sampling"] - reference).max() <= TOL
    assert np.abs(s - reference).max() > 1e-3
    checks = _perturbed(op, sampling=s).recheck(reference=reference)
    assert not _named(checks, "sampling_matches_escnn").passed
    # and with the transposed S the operators lose their equivariance
    p = op["antialias"]
    checks = _perturbed(op, sampling=s, downsample=s @ p).recheck()
    assert not _named(checks, "downsample_equivariance").passed


def test_dropped_band_fails(built):
    """Drop the l = 3 band's kept direction from V: P is not of rank |H| and U no longer inverts S."""
    from gscli.families.continuous._solver import operators, order_bands, walk

    op = built("SO3_L3>O")
    smp = _sampling("SO3_L3>O")
    widths = [d * c for d, c in zip(smp.sizes, smp.copies)]
    bands = order_bands(smp.irreps, smp.casimirs, smp.offsets, widths)
    full = walk(smp.sampling, bands)
    short = walk(smp.sampling, bands[:-1])  # the highest band dropped
    assert full.rank == 24 and short.rank == 23
    b = short.basis
    p = b @ b.T
    u = np.linalg.pinv(smp.sampling @ b)
    u = b @ u
    checks = _perturbed(op, antialias=p, downsample=smp.sampling @ p, upsample=u).recheck()
    failed = {c.name for c in checks if not c.passed}
    assert {"projector_rank", "sampling_inverts_upsample"} <= failed, failed
    with pytest.raises(ArithmeticError):
        operators(smp.sampling, short)


@pytest.mark.parametrize("name, perturb", [
    ("downsample_equivariance", lambda op: {"downsample": op["downsample"] + 1e-9 * np.eye(*op["downsample"].shape)}),
    ("upsample_equivariance", lambda op: {"upsample": op["upsample"] + 1e-9 * np.eye(*op["upsample"].shape)}),
    ("projector_symmetric", lambda op: {"antialias": op["antialias"] + 1e-9 * np.triu(np.ones_like(op["antialias"]), 1)}),
    ("projector_idempotent", lambda op: {"antialias": op["antialias"] * (1 + 1e-9)}),
    ("sampling_inverts_upsample", lambda op: {"upsample": op["upsample"] * (1 + 1e-9)}),
    ("reconstruction", lambda op: {"upsample": op["upsample"] * (1 + 1e-9)}),
    ("downsample_is_sampled_projector", lambda op: {"downsample": op["downsample"] * (1 + 1e-9)}),
])
def test_tolerances_catch_small_errors(built, name, perturb):
    op = built("SO3_L3>O")
    assert _named(op.recheck(), name).passed
    assert not _named(_perturbed(op, **perturb(op)).recheck(), name).passed


def test_projector_commutes_negative_control(built):
    op = built("SO3_L3>O")
    p = op["antialias"]
    e = np.zeros_like(p)
    e[1, 1] = 1.0  # one coordinate of the l = 1 band: not an invariant subspace
    assert not _named(_perturbed(op, antialias=p + 1e-9 * e).recheck(), "projector_commutes").passed


# ------------------------------------------------------------------------------------------------
# SO(2) -> C_N: the ideal low-pass, written out here independently of the library


def _lowpass(n: int, L: int):
    theta = 2 * np.pi * np.arange(n) / n
    cols, keep, rows = [np.ones(n)], [1.0], [np.ones(n) / n]
    for k in range(1, L + 1):
        c, s = np.sqrt(2) * np.cos(k * theta), np.sqrt(2) * np.sin(k * theta)
        cols += [c, s]
        if 2 * k < n:
            keep += [1.0, 1.0]
            rows += [c / n, s / n]
        elif 2 * k == n:  # Nyquist: keep the cosine (its samples are +-sqrt 2), drop the sine
            keep += [1.0, 0.0]
            rows += [c / (2 * n), np.zeros(n)]
        else:
            keep += [0.0, 0.0]
            rows += [np.zeros(n), np.zeros(n)]
    return np.stack(cols, axis=1), np.diag(keep), np.stack(rows)


@pytest.mark.parametrize("spec, n, L", [("SO2_L5>C8", 8, 5), ("SO2_L5>C7", 7, 5), ("SO2_L4>C6", 6, 4), ("SO2_L3>C5", 5, 3)])
def test_so2_is_ideal_lowpass(built, spec, n, L):
    op = built(spec)
    s, p, u = _lowpass(n, L)
    assert np.abs(op["sampling"] - s).max() <= TOL
    assert np.abs(op["antialias"] - p).max() <= TOL
    assert np.abs(op["downsample"] - s @ p).max() <= TOL
    assert np.abs(op["upsample"] - u).max() <= TOL
    assert _named(op.checks, "lowpass_closed_form").passed
    # negative control: the textbook half-gain Nyquist bin is neither a projector nor what was built
    if n % 2 == 0:
        half = p.copy()
        half[n - 1, n - 1] = 0.5
        assert np.abs(op["antialias"] - half).max() > 0.1


# ------------------------------------------------------------------------------------------------
# The file


def test_file_round_trip_and_damage(built, tmp_path):
    from gscli.continuous import read_continuous, write_continuous
    from gscli.fileformat import read_operator

    op = built("SO3_L3>O")
    path = tmp_path / f"{op.spec.stem}.h5"
    write_continuous(op, path)
    back = read_continuous(path)
    assert back.spec == op.spec and back.mode == op.mode and back.subgroup_id == ("octa",)
    for name, a in op.arrays.items():
        assert np.array_equal(np.asarray(back[name]), np.asarray(a)), name
    assert [b.kept for b in back.bands] == [1, 9, 13, 1]
    assert all(c.passed for c in back.recheck())
    data = read_operator(path)  # the one verified reader reads this kind too
    assert data.kind == "continuous" and data.spec == op.spec
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="damaged"):
        read_continuous(damaged)


def test_no_antialias_mode(built):
    op = built("SO2_L2>C8")  # |H| = 8 > dim = 5
    assert op.mode == "no-antialias" and "no anti-aliasing needed" in op.describe()
    assert np.array_equal(op["antialias"], np.eye(5))
    assert np.abs(op["upsample"] @ op["sampling"] - np.eye(5)).max() <= TOL


def test_subgroups_listing():
    from gscli.continuous import continuous_subgroups

    rows = {r["subgroup"]: r for r in continuous_subgroups("SO3_L2", max_n=3)}
    assert rows["O"]["order"] == 24 and rows["O"]["rank"] == 23 and rows["O"]["mode"] == "rank-deficient"
    assert rows["I"]["order"] == 60 and rows["I"]["mode"] == "no-antialias"
    assert rows["C3"]["mode"] == "antialias" and rows["D3"]["order"] == 6


# ------------------------------------------------------------------------------------------------
# Runtime


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_runtime_matches_operators_and_is_equivariant(built, dtype, tol):
    import torch

    from gscli.continuous import ContinuousDownsample, ContinuousUpsample, SubgroupPointwise

    op = built("SO3_L3>O")
    smp = _sampling("SO3_L3>O")
    dt = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3 * op.dimension, 4, generator=gen, dtype=torch.float64)
    down, up = ContinuousDownsample.from_operator(op), ContinuousUpsample.from_operator(op)
    nl = SubgroupPointwise.from_operator(op)
    y = down(x.to(dt))
    assert y.dtype == dt and y.shape == (2, 3 * 24, 4)
    dense = np.einsum("md,bcds->bcms", op["downsample"], x.numpy().reshape(2, 3, op.dimension, 4)).reshape(2, 72, 4)
    assert np.abs(y.double().numpy() - dense).max() <= tol * 10
    # reconstruction on the kept space: U D v = v for v = P x
    v = torch.as_tensor(np.einsum("ed,bcds->bces", op["antialias"], x.numpy().reshape(2, 3, op.dimension, 4)).reshape(x.shape))
    assert (up(down(v.to(dt))).double() - v).abs().max() <= tol * 10
    # exact H-equivariance of the nonlinearity
    for i in (1, 5, 17):
        rho = torch.as_tensor(smp.representation(i), dtype=dt)
        xr = torch.einsum("ed,bcds->bces", rho, x.to(dt).reshape(2, 3, op.dimension, 4)).reshape(x.shape)
        a = nl(xr)
        b = torch.einsum("ed,bcds->bces", rho, nl(x.to(dt)).reshape(2, 3, op.dimension, 4)).reshape(x.shape)
        assert (a - b).abs().max() <= tol * 10
    # negative control: a nonlinearity on a non-equivariant sampling (rows permuted) is not equivariant
    bad = SubgroupPointwise(op["downsample"][np.r_[1, 0, 2:24]], op["upsample"], op.spec, op.subgroup_id, nl.irreps)
    rho = torch.as_tensor(smp.representation(1), dtype=dt)
    xr = torch.einsum("ed,bcds->bces", rho, x.to(dt).reshape(2, 3, op.dimension, 4)).reshape(x.shape)
    b = torch.einsum("ed,bcds->bces", rho, bad(x.to(dt)).reshape(2, 3, op.dimension, 4)).reshape(x.shape)
    assert (bad(xr) - b).abs().max() > 1e-3


def test_runtime_geometric_tensor(built):
    import torch
    from escnn import gspaces
    from escnn import nn as enn

    from gscli.continuous import ContinuousDownsample, ContinuousUpsample, SubgroupPointwise

    op = built("SO2_L5>C8")
    space = gspaces.rot2dOnR2(-1, 5)
    group = space.fibergroup
    ftype = enn.FieldType(space, [group.bl_regular_representation(5)] * 2)
    x = enn.GeometricTensor(torch.randn(3, ftype.size, 5, 5, dtype=torch.float64), ftype)
    down = ContinuousDownsample.from_operator(op)
    y = down(x)
    assert y.type.gspace.fibergroup.order() == 8 and y.type.size == 16
    h = y.type.gspace.fibergroup.elements[3]
    g = group.element(3 * 2 * np.pi / 8)
    assert (down(x.transform_fibers(g)).tensor - y.transform_fibers(h).tensor).abs().max() <= 1e-12
    z = ContinuousUpsample.from_operator(op, gspace=space)(y)
    assert z.type.size == ftype.size
    nl = SubgroupPointwise.from_operator(op)
    fp = enn.FourierPointwise(space, 2, group.bl_irreps(5), type="regular", N=8)
    xf = enn.GeometricTensor(x.tensor, fp.in_type)  # escnn's own field type for the same coefficients
    assert nl(xf).type == fp.in_type
    wrong = enn.FieldType(space, [group.bl_regular_representation(4)] * 2)
    from gscli.errors import InputError

    with pytest.raises(InputError, match="bl_regular_representation"):
        down(enn.GeometricTensor(torch.randn(1, wrong.size, 2, 2), wrong))


def test_runtime_import_does_not_import_escnn():
    import subprocess
    import sys

    code = ("import sys; import gscli.continuous as c; c.ContinuousDownsample; "
            "print('escnn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
