"""Negative controls for every tolerance and aggregation of the checkers (``gscli build``, ``eval``, ``eval-model``).

Each control is a slightly wrong operator (or error table) that a correct checker must refuse: a
tolerance loosened, an aggregation that looks at one element of H instead of all, a ``min`` for a
``max``, or a NaN lost by Python's ``max`` would let it through.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import built
from gscli.checks import TOLERANCES, check_operator, worst
from gscli.evaluate import evaluate, signal_experiments
from gscli.fileformat import OperatorData, read_operator, write_operator
from gscli.groups import regular_representation
from gscli.solver import laplacian

#: The numbers of DESIGN §4, written here by hand (not read from the code): a check may be stricter, never looser.
DESIGN_SECTION_4 = {
    "projector_symmetric": 1e-12,
    "projector_idempotent": 1e-12,
    "sampling_inverts_upsample": 1e-10,
    "reconstruction": 1e-10,
    "downsample_equivariance": 1e-12,
    "upsample_equivariance": 1e-12,
    "laplacian_grading": 1e-10,
    "fft_lowpass": 1e-12,
}


def _checks(op, p=None, d=None, u=None, cyclic=False) -> dict:
    s = op.solution
    checks = check_operator(s.antialias if p is None else p, s.downsample if d is None else d,
                            s.upsample if u is None else u, op.subgroup.nodes, op.group.cayley, op.subgroup.cayley,
                            laplacian=laplacian(op.group), cyclic=cyclic)
    return {c.name: c for c in checks}


def _bump(array: np.ndarray, index: tuple[int, int], by: float) -> np.ndarray:
    out = array.copy()
    out[index] += by
    return out


# each perturbation is ten times the DESIGN tolerance of the check it targets
PERTURBATIONS = {
    "projector_symmetric": lambda s, nodes: {"p": _bump(s.antialias, (0, 1), 1e-11)},
    "projector_idempotent": lambda s, nodes: {"p": s.antialias + 1e-11 * np.eye(len(s.antialias))},
    "sampling_inverts_upsample": lambda s, nodes: {"u": _bump(s.upsample, (int(nodes[0]), 0), 1e-9)},
    "reconstruction": lambda s, nodes: {"u": _bump(s.upsample, (int(np.setdiff1d(np.arange(len(s.antialias)), nodes)[0]), 0), 4e-9)},
    "downsample_equivariance": lambda s, nodes: {"d": _bump(s.downsample, (1, 0), 1e-11)},
    "upsample_equivariance": lambda s, nodes: {"u": _bump(s.upsample, (0, 1), 1e-11)},
    "laplacian_grading": lambda s, nodes: {"p": _bump(s.antialias, (0, 0), 1e-9)},
    "fft_lowpass": lambda s, nodes: {"d": _bump(s.downsample, (0, 3), 1e-11)},
}


@pytest.mark.parametrize("name", sorted(DESIGN_SECTION_4))
def test_tolerances_are_those_of_design_section_4(name: str) -> None:
    assert TOLERANCES[name] <= DESIGN_SECTION_4[name]
    group, subgroup = ("C16", "C8") if name == "fft_lowpass" else ("D8", "D1")  # D1: not normal in D8
    op = built(group, subgroup)
    clean = _checks(op, cyclic=group.startswith("C"))
    assert clean[name].passed, str(clean[name])
    bad = _checks(op, **PERTURBATIONS[name](op.solution, op.subgroup.nodes), cyclic=group.startswith("C"))
    assert not bad[name].passed, f"{name}: an error of 10x the DESIGN tolerance passed: {bad[name]}"


def _lam(cayley: np.ndarray, g: int) -> np.ndarray:
    return regular_representation(cayley, g)


def _only_last_element(op, shape: tuple[int, int], down: bool, rng: np.random.Generator) -> np.ndarray:
    """A perturbation equivariant under K = {e, last element of H} but under no other h (unless in K)."""
    nodes, cg, ch = op.subgroup.nodes, op.group.cayley, op.subgroup.cayley
    last = len(nodes) - 1
    x = rng.standard_normal(shape)
    lg, lh = _lam(cg, int(nodes[last])), _lam(ch, last)
    assert np.array_equal(lg @ lg, np.eye(len(lg)))  # the last element has order 2: K = {e, last}
    return x + (lh @ x @ lg.T if down else lg @ x @ lh.T)


@pytest.mark.parametrize(("group", "subgroup"), [("D8", "D4"), ("O", "D3")])
def test_equivariance_is_checked_for_every_element_not_only_the_last(group: str, subgroup: str,
                                                                     rng: np.random.Generator) -> None:
    op = built(group, subgroup)
    s, nodes, cg, ch = op.solution, op.subgroup.nodes, op.group.cayley, op.subgroup.cayley
    m, n = len(nodes), op.group.order
    d = s.downsample + 1e-6 * _only_last_element(op, (m, n), True, rng)
    u = s.upsample + 1e-6 * _only_last_element(op, (n, m), False, rng)
    last = m - 1
    lg, lh = _lam(cg, int(nodes[last])), _lam(ch, last)
    assert np.abs(d @ lg - lh @ d).max() <= 1e-15 and np.abs(u @ lh - lg @ u).max() <= 1e-15  # fine for the last h
    found = _checks(op, d=d, u=u)
    assert not found["downsample_equivariance"].passed and found["downsample_equivariance"].error > 1e-7
    assert not found["upsample_equivariance"].passed and found["upsample_equivariance"].error > 1e-7
    # the character, for an element in the middle of H only
    middle = m // 2
    p = s.antialias + 1e-6 * _lam(cg, int(nodes[middle])).T / n
    assert not _checks(op, p=p)["character"].passed


def _write(op, folder: Path, **arrays: np.ndarray) -> Path:
    """A consistent, sealed operator file (through gscli's own writer) with some arrays replaced."""
    path = folder / f"{op.spec.stem}.h5"
    write_operator(path, {**op.arrays(), **arrays}, op.attrs())
    return path


def _relabelled(table: np.ndarray, a: int, b: int) -> np.ndarray:
    """The same group with elements a and b swapped: a valid Cayley table, not escnn's."""
    perm = np.arange(len(table))
    perm[[a, b]] = [b, a]
    out = np.empty_like(table)
    out[np.ix_(perm, perm)] = perm[table]
    return out


@pytest.mark.parametrize(("group", "subgroup"), [("D8", "D4"), ("O", "T")])
def test_eval_refuses_a_sealed_file_with_a_wrong_group_table(group: str, subgroup: str, tmp_path: Path) -> None:
    op = built(group, subgroup)
    n = op.group.order
    a, b = [x for x in range(n) if x != op.group.identity][:2]
    path = _write(op, tmp_path, group_cayley=_relabelled(op.group.cayley, a, b))
    read_operator(path)  # the file itself is sound: checksums and header verify
    report = evaluate(path, signals=False)
    failing = {c.name for c in report.checks if not c.passed}
    assert not report.passed and "group_table" in failing, failing


def test_eval_refuses_a_sealed_file_with_a_wrong_subgroup_table(tmp_path: Path) -> None:
    op = built("D8", "D4")
    path = _write(op, tmp_path, subgroup_cayley=_relabelled(op.subgroup.cayley, 1, 2))
    failing = {c.name for c in evaluate(path, signals=False).checks if not c.passed}
    assert "subgroup_table" in failing


def test_eval_checks_every_element_in_float32_too(tmp_path: Path, rng: np.random.Generator) -> None:
    op = built("D8", "D4")
    m, n = op.subgroup.order, op.group.order
    d = op.solution.downsample + 1e-3 * _only_last_element(op, (m, n), True, rng)
    path = _write(op, tmp_path, downsample=d)
    failing = {c.name for c in evaluate(path, signals=False).checks if not c.passed}
    assert {"downsample_equivariance", "float32_downsample_equivariance"} <= failing


@pytest.mark.parametrize("size", [1e-8, 1.0])
def test_features_equivariance_has_a_negative_control(size: float, rng: np.random.Generator, tmp_path: Path) -> None:
    op = built("D8", "D4")
    path = _write(op, tmp_path)
    data = read_operator(path)
    _, checks, _ = signal_experiments(data, seed=0)
    assert next(c for c in checks if c.name == "features_equivariance").passed
    d = np.array(data["downsample"])
    d = d + size * rng.standard_normal(d.shape) * np.abs(d).max()  # not equivariant, by 1e-8 or grossly
    bad = OperatorData({**data.arrays, "downsample": d}, dict(data.attrs), data.path)
    _, checks, _ = signal_experiments(bad, seed=0)
    check = next(c for c in checks if c.name == "features_equivariance")
    assert not check.passed and check.error > 1e-10 * 10


# ----- aggregation: NaN, max vs min ------------------------------------------------------------------------

def test_worst_keeps_nan_wherever_it_stands() -> None:
    assert math.isnan(worst(float("nan"), 0.0)) and math.isnan(worst(0.0, float("nan")))
    assert math.isnan(max(0.0, float("nan"))) is False  # why: Python's max drops a NaN that comes second
    assert worst(1e-3, 5.0, 2.0) == 5.0 and worst() == 0.0


def test_a_nan_in_the_float32_checks_fails_eval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import gscli.families.finite._checks as ev

    op = built("C8", "C4")
    path = _write(op, tmp_path)
    calls = {"n": 0}
    real = ev._relmax

    def nan_for_the_first_element(a, reference):
        calls["n"] += 1
        return float("nan") if calls["n"] == 3 else real(a, reference)  # the first h of the equivariance loop

    monkeypatch.setattr(ev, "_relmax", nan_for_the_first_element)
    failing = {c.name for c in evaluate(path, signals=False).checks if not c.passed}
    assert "float32_downsample_equivariance" in failing


# ----- eval-model: the invariance tolerance, max over transforms, a one-sided bound --------------------

def _variant(logits: dict[str, float], inside: tuple[str, ...], dtype=None):
    import torch

    from gscli.models._analysis import INVARIANCE_TOL, VariantErrors

    tol = INVARIANCE_TOL[dtype or torch.float32]
    return VariantErrors("antialiased", ("D4", "C4"), 0, 0, [], logits, inside, tol)


def test_eval_model_tolerance_is_pinned() -> None:
    import torch

    from gscli.models._analysis import INVARIANCE_TOL

    # measured errors are at most 8.4e-8 (float32) and 1.6e-8 (float64); the tolerances leave a margin, no more
    assert INVARIANCE_TOL == {torch.float32: 1e-4, torch.float64: 1e-6}
    assert not _variant({"r": 2e-4}, ("r",)).ok  # twice the float32 tolerance
    assert not _variant({"r": 2e-6}, ("r",), torch.float64).ok


def test_eval_model_takes_the_worst_transform_and_an_upper_bound_only() -> None:
    v = _variant({"r": 1e-9, "s": 1e-2, "r s": 5e-3}, ("r", "s"))
    assert v.logits_inside == 1e-2 and not v.ok  # the max over the transforms inside, not the min
    assert _variant({"r": 0.0, "s": 5e-5}, ("r", "s")).ok  # below the bound: fine, however far below
    assert _variant({"r": 1e-4}, ("r",)).ok and not _variant({"r": 1.0001e-4}, ("r",)).ok
    assert _variant({"r s": 0.5}, ("r",)).ok  # a transform outside the final group is not bounded


def test_eval_model_nan_fails_in_any_order() -> None:
    from gscli.models._analysis import LayerErrors

    nan = float("nan")
    for logits in ({"r": nan, "s": 0.0}, {"s": 0.0, "r": nan}):
        v = _variant(logits, ("r", "s"))
        assert math.isnan(v.logits_inside) and not v.ok
        layer = LayerErrors("b", "conv", "D4", (1, 8, 5), ("r", "s"), logits, logits)
        assert math.isnan(layer.worst("equivariance", True))
