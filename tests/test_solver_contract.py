"""The solver's contract pinned where a slightly wrong solver would pass: P bitwise symmetric, bands
separated at the documented tolerance, and the memory estimate against the bytes a build really holds."""

from __future__ import annotations

import numpy as np
import pytest

from gscli.solver import BAND_TOL, spectral_bands

escnn = pytest.importorskip("escnn")


@pytest.mark.parametrize(("group", "subgroup", "generators"), [
    ("D12", "D6", None), ("C16", "C4", None), ("O", "C4", None), ("D12", "D6", "r,r s"),
    ("D9", "C3", None),
])
def test_the_projector_is_bitwise_symmetric(group: str, subgroup: str, generators: str | None) -> None:
    """P = P^T exactly, not within rounding: files, the runtime and eval's checks rely on it."""
    from gscli.build import build_operator

    op = build_operator(group, subgroup=subgroup, generators=generators)
    p = op.solution.antialias
    assert np.array_equal(p, p.T)
    assert op.ok


def test_eigenvalues_closer_than_the_band_tolerance_merge_and_farther_ones_do_not() -> None:
    """A symmetric matrix with known spectrum {0, 1, 1 + d, 2, 2 + e}: d = 1e-7 relative is a real
    frequency gap (above BAND_TOL = 1e-8 times the scale), e = 1e-13 is rounding."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    spectrum = np.array([0.0, 1.0, 1.0 + 2e-7, 2.0, 2.0 + 1e-13])
    bands = spectral_bands(q @ np.diag(spectrum) @ q.T)
    assert [b[1].shape[1] for b in bands] == [1, 1, 1, 2]
    assert abs(bands[2][0] - (1 + 2e-7)) < 1e-12 and abs(bands[1][0] - 1) < 1e-12
    # the scale is max(1, |lambda|max) = 2: the cut sits at BAND_TOL * 2 = 2e-8, ten times below the gap
    assert BAND_TOL * 2 <= 2e-7 / 10


def test_a_gap_between_rounding_and_the_band_tolerance_is_refused_not_guessed() -> None:
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    with pytest.raises(ArithmeticError, match="within the band tolerance"):
        spectral_bands(q @ np.diag([0.0, 1.0, 1.0 + 5e-9, 2.0]) @ q.T)


def test_the_memory_estimate_matches_the_bytes_a_build_holds_within_10_percent(tmp_path) -> None:
    """estimate_build_memory's model, term by term, against a real build of D128 > D64 (n = 256): the
    operator held (P, G's int64 Cayley table, B, D, U), the file read back twice (its size on disk),
    and one more n x n float64 matrix for the checks; plus 512 MiB for the interpreter."""
    from gscli.build import build, build_operator, estimate_build_memory

    op = build_operator("D128", subgroup="D64")
    arrays = op.arrays()
    n, m = op.group.order, op.subgroup.order
    held = sum(arrays[k].nbytes for k in ("antialias", "group_cayley", "basis", "downsample", "upsample"))
    file_bytes = build("D128", subgroup="D64", out=tmp_path).path.stat().st_size
    check_matrix = arrays["antialias"].nbytes
    measured = held + 2 * file_bytes + check_matrix
    modelled = estimate_build_memory(n, m) - 512 * 2**20
    assert abs(modelled - measured) <= 0.10 * measured, (modelled, measured)
