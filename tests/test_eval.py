"""gscli eval: the checker (library), the signal experiments and the command line, with negative controls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gscli.build import build
from gscli.checks import TOLERANCES
from gscli.cli import main
from gscli.evaluate import (
    EVAL_TOLERANCES,
    check_file,
    evaluate,
    grid_transform,
    sample_images,
    signal_experiments,
)
from gscli.fileformat import OperatorData, _seal, array_checksum, read_operator

STEMS = ("C8-C4", "D8-D4", "D12-C12", "O-T")


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval-store")
    for stem in STEMS:
        group, sub = stem.split("-")
        build(group, subgroup=sub, out=folder)
    return folder


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _rewrite(path: Path, name: str, array: np.ndarray) -> None:
    """Replace one dataset and store the checksum of the new arrays, so only the checks can notice."""
    with h5py.File(path, "r+") as f:
        dtype = f[name].dtype
        del f[name]
        f.create_dataset(name, data=np.asarray(array, dtype=dtype))
    arrays = read_operator(path, verify=False).arrays
    with h5py.File(path, "r+") as f:
        f.attrs["checksum"] = array_checksum(arrays)
    _seal(path)  # and the whole-file header: a consistent file whose numbers are wrong


def _copy(store: Path, stem: str, folder: Path) -> Path:
    path = folder / f"{stem}.h5"
    shutil.copyfile(store / f"{stem}.h5", path)
    return path


def _with(data: OperatorData, name: str, array: np.ndarray) -> OperatorData:
    return OperatorData({**data.arrays, name: array}, dict(data.attrs), data.path)


# ---------------------------------------------------------------------------------------------- library: checks


@pytest.mark.parametrize("stem", STEMS)
def test_every_check_passes_on_built_operators(store: Path, stem: str) -> None:
    data = read_operator(store / f"{stem}.h5")
    checks = check_file(data)
    names = {c.name for c in checks}
    expected = set(TOLERANCES) | set(EVAL_TOLERANCES)
    expected -= {"lift_equivariance", "features_equivariance"}  # from the signal experiments
    if not stem.startswith("C"):
        expected.discard("fft_lowpass")
    if stem == "O-T":
        expected.discard("subgroup_table")  # T has no closed-form table without escnn
    assert names == expected
    assert [str(c) for c in checks if not c.passed] == []


CORRUPTIONS = [
    # (dataset, how, the check that must fail)
    ("antialias", lambda a: a + np.triu(np.full_like(a, 1e-6), 1), "projector_symmetric"),
    ("antialias", lambda a: 1.001 * a, "projector_idempotent"),
    ("downsample", lambda a: a + np.eye(*a.shape) * 1e-4, "downsample_is_sampled_projector"),
    ("upsample", lambda a: a * 1.01, "sampling_inverts_upsample"),
    ("basis", lambda a: a * 1.01, "basis_orthonormal"),
    ("subgroup_nodes", lambda a: a[[1, 0, *range(2, len(a))]], "subgroup_homomorphism"),
    ("group_generators", lambda a: a[:1], "group_table"),  # one generator no longer generates D8
]


@pytest.mark.parametrize("name, corrupt, check", CORRUPTIONS)
def test_corruption_is_caught_by_its_check(store: Path, name: str, corrupt, check: str) -> None:
    data = read_operator(store / "D8-D4.h5")
    bad = _with(data, name, corrupt(np.array(data[name])))
    failing = {c.name for c in check_file(bad) if not c.passed}
    assert check in failing


def test_band_table_corruption(store: Path) -> None:
    data = read_operator(store / "C8-C4.h5")
    bands = data["bands"].copy()
    bands["kept"][2], bands["kept"][3] = 0, 1  # claims to keep k = 3 instead of the Nyquist cosine
    failing = {c.name for c in check_file(_with(data, "bands", bands)) if not c.passed}
    assert failing == {"band_table"}


def test_downsample_corruption_breaks_float32_equivariance(store: Path) -> None:
    data = read_operator(store / "C8-C4.h5")
    d = np.array(data["downsample"])
    d[0, 1] += 1e-3
    failing = {c.name for c in check_file(_with(data, "downsample", d)) if not c.passed}
    assert {"downsample_is_sampled_projector", "downsample_equivariance", "fft_lowpass",
            "float32_downsample_equivariance"} <= failing


# ---------------------------------------------------------------------------------------------- runtime path


def test_float32_checks_go_through_the_runtime_layer(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gscli.nn import GroupDownsample

    data = read_operator(store / "D8-D4.h5")
    assert all(c.passed for c in check_file(data) if c.name.startswith("float32"))
    real = GroupDownsample.forward

    def off_by_a_bit(self, x):  # a runtime that loses precision must fail eval's float32 checks
        y = real(self, x)
        return y + 1e-3 * y.abs().max()

    monkeypatch.setattr(GroupDownsample, "forward", off_by_a_bit)
    failing = {c.name for c in check_file(data) if not c.passed}
    assert "float32_downsample" in failing


# ---------------------------------------------------------------------------------------------- signals


def test_grid_transform_matches_escnn_convention() -> None:
    img = np.arange(20.0).reshape(4, 5)[:, :4] + np.arange(4)[:, None] * 0.5  # asymmetric 4x4
    rot90 = np.array([[0.0, -1.0], [1.0, 0.0]])  # counter-clockwise quarter turn
    # escnn rotates arrays by multiples of 90 degrees with np.rot90(x, k, axes=(-2, -1))
    np.testing.assert_array_equal(grid_transform(img, rot90), np.rot90(img, 1))
    np.testing.assert_array_equal(grid_transform(img, rot90 @ rot90), np.rot90(img, 2))
    # (x, y) -> (-x, y): mirror the columns
    np.testing.assert_array_equal(grid_transform(img, np.diag([-1.0, 1.0])), img[:, ::-1])
    odd = np.random.default_rng(0).standard_normal((2, 5, 5))
    np.testing.assert_array_equal(grid_transform(odd, rot90), np.rot90(odd, 1, axes=(-2, -1)))
    for bad in ([[0.8, -0.6], [0.6, 0.8]], [[1.0, 0.0], [1.0, 0.0]]):
        with pytest.raises(ValueError, match="not an exact grid transform"):
            grid_transform(img, np.array(bad))


def test_sample_images_are_real_and_distinct() -> None:
    images, names = sample_images(48)
    assert images.shape == (3, 48, 48) and len(names) == 3
    np.testing.assert_allclose(images.mean(axis=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(images.std(axis=(1, 2)), 1, atol=1e-12)
    flat = images.reshape(3, -1)
    assert np.abs(np.corrcoef(flat)[np.triu_indices(3, 1)]).max() < 0.9
    # natural images are smooth: neighbouring pixels correlate strongly, unlike noise
    for img in images:
        assert np.corrcoef(img[:, :-1].ravel(), img[:, 1:].ravel())[0, 1] > 0.5


@pytest.mark.parametrize("stem", ["D8-D4", "D12-C12"])
def test_image_features_experiment(store: Path, stem: str) -> None:
    data = read_operator(store / f"{stem}.h5")
    results, checks, notes = signal_experiments(data, seed=0)
    assert notes == []
    assert {c.name for c in checks} == {"lift_equivariance", "features_equivariance"}
    assert all(c.passed for c in checks), [str(c) for c in checks]
    images = results[0]
    assert images.signal.startswith("image features") and images.count == 3 * 4 * 48 * 48
    # both pipelines are H-equivariant on real features (float64), for e and at least one other element
    assert len(images.transforms) >= 2 and images.transforms[0] == "e"
    assert images.equivariance_plain < 1e-12 and images.equivariance_operator < 1e-12
    for r in results:
        assert r.aliasing_operator < 1e-20 < r.aliasing_plain
        assert r.reconstruction_operator < r.reconstruction_plain


def test_lift_check_catches_a_wrong_rotation_direction(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gscli import _escnn

    real = _escnn.planar_lift

    def mirrored(*args):
        filters, plane = real(*args)
        return filters, plane.transpose(0, 2, 1)  # inverse rotations, same flips

    monkeypatch.setattr(_escnn, "planar_lift", mirrored)
    _, checks, _ = signal_experiments(read_operator(store / "D8-D4.h5"), seed=0)
    lift = next(c for c in checks if c.name == "lift_equivariance")
    assert not lift.passed and lift.error > 0.1


def test_bandlimited_signals_are_reconstructed_by_both(store: Path) -> None:
    from gscli.families.finite._experiments import _measure

    data = read_operator(store / "O-T.h5")
    x = data["basis"] @ np.random.default_rng(0).standard_normal((12, 64))
    r = _measure("bandlimited", x, data)
    assert r.out_of_band < 1e-25
    assert r.reconstruction_plain < 1e-12 and r.reconstruction_operator < 1e-12
    assert r.aliasing_plain < 1e-25 and r.aliasing_operator < 1e-25


def test_white_noise_aliasing_matches_expectation(store: Path) -> None:
    # For white noise f, E||S (I - P) f||^2 / E||S f||^2 = (m - tr(S P S^T)) / m.
    data = read_operator(store / "O-T.h5")
    results, _, notes = signal_experiments(data, seed=3)
    assert "smooth functions on the sphere stand in for real signals" in notes[0]
    noise = next(r for r in results if r.signal == "white noise")
    nodes = data["subgroup_nodes"]
    m = len(nodes)
    expected = (m - np.trace(data["antialias"][np.ix_(nodes, nodes)])) / m
    assert noise.aliasing_plain == pytest.approx(expected, abs=0.05)
    assert noise.out_of_band == pytest.approx(1 - m / data["antialias"].shape[0], abs=0.05)


# ---------------------------------------------------------------------------------------------- command line


def test_cli_eval_one_file(store: Path) -> None:
    code, out, err = _run("eval", str(store / "C8-C4.h5"))
    assert code == 0, err
    assert "C8>C4: guarantees recomputed from" in out
    assert "fft_lowpass" in out and "float32_downsample_equivariance" in out and "FAILED" not in out
    assert "plain subsampling vs the operator" in out and "aliasing energy, operator" in out


def test_cli_eval_json(store: Path) -> None:
    code, out, err = _run("eval", str(store / "D8-D4.h5"), str(store / "O-T.h5"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["passed"] is True
    assert [f["operator"] for f in doc["files"]] == ["D8>D4", "O>T"]
    for f in doc["files"]:
        assert f["passed"] and f["error"] is None
        assert all(c["passed"] and c["error"] <= c["tolerance"] for c in f["checks"])
        assert {s["signal"].split(" (")[0] for s in f["signals"]} >= {"white noise"}
        for s in f["signals"]:
            assert s["aliasing"]["operator"] < 1e-20 < s["aliasing"]["plain"]


def test_cli_eval_fails_on_corrupted_operator_with_valid_checksum(store: Path, tmp_path: Path) -> None:
    path = _copy(store, "D8-D4", tmp_path)
    p = read_operator(path)["antialias"].copy()
    p[0, 1] += 1e-6
    _rewrite(path, "antialias", p)
    read_operator(path)  # the checksum is valid: only the checks can catch it
    code, out, err = _run("eval", str(path), "--no-signals")
    assert code == 1
    assert "1 of 1 operator file(s) failed" in err
    assert "check projector_symmetric failed: error 1e-06 > tolerance 1e-12" in err
    assert "FAILED" in out


def test_cli_eval_fails_on_corrupted_downsample(store: Path, tmp_path: Path) -> None:
    path = _copy(store, "C8-C4", tmp_path)
    d = read_operator(path)["downsample"].copy()
    d[1] *= 1.0001
    _rewrite(path, "downsample", d)
    code, out, err = _run("eval", str(path), "--no-signals", "--json")
    assert code == 1
    doc = json.loads(out)
    failing = {c["name"] for c in doc["files"][0]["checks"] if not c["passed"]}
    assert {"downsample_is_sampled_projector", "downsample_equivariance", "fft_lowpass"} <= failing
    assert "check downsample_is_sampled_projector failed: error" in err and "> tolerance 1e-12" in err


def test_cli_eval_catalog(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for stem in ("C8-C4", "O-T"):
        _copy(store, stem, tmp_path)
    code, out, err = _run("eval", "--catalog", "--out", str(tmp_path), "--no-signals", "--json")
    assert code == 0, err
    assert [Path(f["file"]).name for f in json.loads(out)["files"]] == ["C8-C4.h5", "O-T.h5"]
    # the store can also come from GSCLI_STORE
    monkeypatch.setenv("GSCLI_STORE", str(tmp_path))
    code, out, err = _run("eval", "--catalog", "--no-signals")
    assert code == 0, err
    assert "gscli eval" in out and "C8>C4" in out and "O>T" in out
    # a damaged file (its sha256 no longer matches its header) fails alone, the others are still evaluated
    with h5py.File(tmp_path / "O-T.h5", "r+") as f:
        f["upsample"][0, 0] += 1.0
    code, out, err = _run("eval", "--catalog", "--no-signals", "--json")
    assert code == 1
    doc = json.loads(out)
    assert [f["passed"] for f in doc["files"]] == [True, False]
    assert "damaged: the file's sha256" in doc["files"][1]["error"] and "damaged: the file's sha256" in err


def test_cli_eval_refuses_a_store_file_holding_another_operator(store: Path, tmp_path: Path) -> None:
    """D8-D4.h5 that holds C8>C4 is valid and passes every check of C8>C4, but not the operator its name says."""
    shutil.copyfile(store / "C8-C4.h5", tmp_path / "D8-D4.h5")
    _copy(store, "O-T", tmp_path)
    code, out, err = _run("eval", "--catalog", "--out", str(tmp_path), "--no-signals", "--json")
    assert code == 1
    doc = json.loads(out)
    assert [f["passed"] for f in doc["files"]] == [False, True]
    assert doc["files"][0]["error"] == f"unreadable: {tmp_path / 'D8-D4.h5'}: holds the C8>C4 operator, not the D8>D4 asked for"
    code, _, err = _run("eval", str(tmp_path / "D8-D4.h5"), "--no-signals")
    assert code == 1 and "holds the C8>C4 operator, not the D8>D4 asked for" in err
    # control: under a name that promises no operator, the same bytes pass
    shutil.copyfile(store / "C8-C4.h5", tmp_path / "my-copy.h5")
    code, _, err = _run("eval", str(tmp_path / "my-copy.h5"), "--no-signals")
    assert code == 0, err


def test_cli_eval_usage_errors(tmp_path: Path) -> None:
    code, _, err = _run("eval")
    assert code == 2 and "give one or more operator FILEs, or --catalog" in err
    code, _, err = _run("eval", "x.h5", "--catalog")
    assert code == 2 and "not both" in err
    code, _, err = _run("eval", "--catalog", "--out", str(tmp_path))
    assert code == 1 and "holds no .h5 files" in err
    code, _, err = _run("eval", "--catalog", "--out", str(tmp_path / "nowhere"))
    assert code == 1 and "does not exist" in err
    code, _, err = _run("eval", str(tmp_path / "missing.h5"))
    assert code == 1 and "missing.h5: no such operator file" in err


def test_evaluate_report_for_unreadable_file(tmp_path: Path) -> None:
    report = evaluate(tmp_path / "missing.h5")
    assert not report.passed and report.failures == [f"unreadable: {tmp_path / 'missing.h5'}: no such operator file"]
