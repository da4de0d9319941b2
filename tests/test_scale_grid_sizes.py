"""Grid operators at every size: the O(N^2) closed form against independent references, the memory
estimate and refusal, the aliasing share where it is undefined (Z_N -> Z_1), strict JSON, and the
negative controls that pin each grid check's tolerance, sizes and directions."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gscli.build import build_spec as build_grid
from gscli.cli import main
from gscli.errors import SizeError, StoreError
from gscli.evaluate import evaluate
from gscli.families.grid import _experiments as _grid_experiments
from gscli.families.grid import _operator as _grid
from gscli.families.grid._operator import (
    CONSTRUCTION,
    GRID_TOLERANCES,
    build_grid_operator,
    estimate_grid_memory,
    grid_arrays,
    grid_matrix,
    intermediate_sizes,
)
from gscli.fileformat import read_operator, write_operator
from gscli.specs import GridOperatorSpec

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def strict(text: str):
    """json.loads that refuses NaN and Infinity (what a standard JSON reader does)."""
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def cosine_sum(n: int, m: int) -> np.ndarray:
    """The formula of docs/scale.md, summed over an (h, m, n) array as gscli did before (small sizes only)."""
    if m > n:
        return (m / n) * cosine_sum(m, n).T
    k = np.arange(1, (m - 1) // 2 + 1, dtype=np.float64)
    phase = np.arange(m)[:, None] / m - np.arange(n)[None, :] / n
    return (1.0 + 2.0 * np.cos(2.0 * np.pi * k[:, None, None] * phase[None]).sum(axis=0)) / n


def fft_matrix(n: int, m: int) -> np.ndarray:
    """Numpy's FFT per column, keep 2|k| < min(n, m), inverse FFT at size m."""
    out = np.zeros((m, n))
    for j in range(n):
        spectrum = np.fft.fft(np.eye(n)[j]) / n
        target = np.zeros(m, dtype=complex)
        for k in range(-min(n, m), min(n, m) + 1):
            if 2 * abs(k) < min(n, m):
                target[k % m] = spectrum[k % n]
        out[:, j] = np.fft.ifft(target).real * m
    return out


# ------------------------------------------------------------------------------------- the closed form

SIZES = [(28, 20), (28, 14), (7, 3), (12, 8), (13, 5), (9, 9), (16, 1), (5, 2), (30, 7), (64, 63), (2, 1), (1, 1)]


@pytest.mark.parametrize(("n", "m"), SIZES)
def test_grid_matrix_equals_the_cosine_sum_and_the_fft(n: int, m: int) -> None:
    for a, b in ((n, m), (m, n)):  # down and up, odd and even M, divisors and not
        built = grid_matrix(a, b)
        assert built.shape == (b, a) and built.dtype == np.float64
        assert np.abs(built - cosine_sum(a, b)).max() < 1e-14
        assert np.abs(built - fft_matrix(a, b)).max() < 1e-14


def test_grid_build_memory_grows_as_n_squared() -> None:
    """The (h, M, N) cosine array needed 8 h M N bytes: 107 MB for Z300>Z299 against 0.7 MB per matrix."""
    build_grid_operator("Z3>Z2")  # torch and its modules loaded: their Python objects are not the build's
    tracemalloc.start()
    op = build_grid_operator("Z300>Z299")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert op.ok
    assert peak < 30 * 8 * 300**2, f"peak {peak / 2**20:.1f} MiB"


def test_the_estimate_is_an_upper_bound_of_the_measured_peak_and_not_far_above() -> None:
    spec = GridOperatorSpec.parse("Z512>Z511")
    build_grid_operator("Z3>Z2")  # torch and its modules loaded: their Python objects are not the build's
    tracemalloc.start()
    build_grid_operator(spec)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrays = estimate_grid_memory(spec) - 512 * 2**20  # the estimate less the interpreter and libraries
    assert peak <= arrays <= 2.5 * peak, (peak, arrays)


def test_a_grid_build_that_cannot_fit_is_refused_before_anything_is_allocated(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    need = estimate_grid_memory("Z4096>Z4095")
    assert need > 3 * 8 * (4096**2 + 2 * 4096 * 4095)  # at least the file's three copies
    monkeypatch.setattr(_grid, "available_memory", lambda: need - 1)
    monkeypatch.setattr(_grid, "grid_arrays", lambda spec: pytest.fail("allocated although it cannot fit"))
    with pytest.raises(SizeError, match=r"building Z4096>Z4095 needs about \d+\.\d GiB of memory .* only \d+\.\d GiB"):
        build_grid("Z4096>Z4095", out=tmp_path)
    code, out, err = run("build", "Z4096>Z4095", "--out", str(tmp_path), "--json")
    assert code == 2 and strict(out)["error"]["type"] == "SizeError"
    assert err.count("\n") == 1 and "GiB of memory" in err and list(tmp_path.iterdir()) == []


def test_a_huge_grid_is_refused_in_one_line_by_a_real_process(tmp_path: Path) -> None:
    """Z4096^3: about 36000 GiB; refused from the estimate, on any machine, in one line, nothing written."""
    r = subprocess.run([sys.executable, "-m", "gscli", "build", "Z4096^3>Z4095^3", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("Error: building Z4096x4096x4096>Z4095x4095x4095 needs about ")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and r.stdout == ""
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------- aliasing share


def independent_aliasing(y: np.ndarray, x: np.ndarray, m: int) -> list[float | None]:
    """1-D, per signal, with explicit DFT sums (not numpy's FFT): A / (A + B), A = ||Y - X_B||^2 folded in,
    B = ||X_B||^2 the band's; None when A + B = 0 (no output energy)."""
    n = x.shape[-1]
    h = (m - 1) // 2
    shares = []
    for xs, ys in zip(x.reshape(-1, n), y.reshape(-1, m)):
        big_x = np.array([np.sum(xs * np.exp(-2j * np.pi * k * np.arange(n) / n)) / n for k in range(n)])
        big_y = np.array([np.sum(ys * np.exp(-2j * np.pi * k * np.arange(m) / m)) / m for k in range(m)])
        target = np.zeros(m, dtype=complex)
        for k in range(-h, h + 1):
            target[k % m] = big_x[k % n]
        folded = np.sum(np.abs(big_y - target) ** 2)
        total = folded + np.sum(np.abs(target) ** 2)
        shares.append(None if total <= 1e-20 * np.sum(np.abs(big_x) ** 2) else float(folded / total))
    return shares


@pytest.mark.parametrize("m", [1, 2, 3, 9, 14, 20, 27, 28])
def test_aliasing_share_agrees_with_explicit_dft_sums_and_lies_in_0_1(m: int) -> None:
    pytest.importorskip("matplotlib")
    data = build_grid_operator(f"Z28>Z{m}")
    spec = data.spec
    x, _ = _grid_experiments._images(spec)
    plain = _grid_experiments._nearest(28, m)
    d = data.arrays["axis0/downsample"]
    for matrix, name in ((plain, "plain"), (d, "operator")):
        y = np.einsum("ij,bcj->bci", matrix, x)
        expected = [s for s in independent_aliasing(y, x, m) if s is not None]
        found = _grid_experiments._aliasing(y, x, spec)
        if not expected:
            assert found is None, name
            continue
        assert found is not None and abs(found - np.mean(expected)) < 1e-9, name
        assert 0.0 <= found <= 1.0 + 1e-12, (name, found)


@pytest.mark.parametrize("text", ["Z28x28>Z1x1", "Z28x28>Z2x2"])
def test_eval_of_an_operator_that_keeps_only_the_constant_says_undefined(tmp_path: Path, text: str) -> None:
    """Zero-mean images through a DC-only operator: no output energy, so no share (it printed 1.5e+267 and 6.1)."""
    pytest.importorskip("matplotlib")
    path = build_grid(text, out=tmp_path).path
    code, out, _ = run("eval", str(path), "--json")
    assert code == 0
    signal = strict(out)["files"][0]["signals"][0]
    assert signal["aliasing"]["operator"] is None
    # plain subsampling keeps one pixel (Z1) or the mean of a 2x2 sample (Z2): all of it is folded-in energy
    assert signal["aliasing"]["plain"] == pytest.approx(1.0, abs=1e-9)
    code, out, _ = run("eval", str(path))
    assert code == 0
    row = next(line for line in out.splitlines() if "aliasing energy, operator" in line)
    assert "undefined (no energy)" in row and "e+" not in row


def test_every_json_output_is_strict_json(tmp_path: Path) -> None:
    """Z1>Z1: zero images (one pixel, zero mean) made NaN reconstruction errors, printed as NaN."""
    pytest.importorskip("matplotlib")
    for text in ("Z1>Z1", "Z28x28>Z1x1", "Z8>Z8"):
        build_grid(text, out=tmp_path)
    outputs = [run("eval", str(tmp_path / "Z1-Z1.h5"), "--json"), run("eval", "--catalog", "--out", str(tmp_path), "--json"),
               run("inspect", str(tmp_path / "Z1-Z1.h5"), "--json"), run("build", "Z1>Z1", "--out", str(tmp_path), "--json")]
    for code, out, err in outputs:
        assert code == 0, err
        strict(out)
    signal = strict(outputs[0][1])["files"][0]["signals"][0]
    assert signal["reconstruction"] == {"plain": None, "operator": None} and signal["out_of_band"] is None


def test_print_json_never_writes_nan() -> None:
    from gscli.cli._common import strict_json

    document = {"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": {"d": (float("nan"),)}}
    assert json.loads(json.dumps(strict_json(document), allow_nan=False)) == {"a": None, "b": [None, None, 1.5],
                                                                               "c": {"d": [None]}}


# ------------------------------------------------------------------------------------- negative controls


def sealed(path: Path, text: str, change=None, construction: str = CONSTRUCTION) -> Path:
    spec = GridOperatorSpec.parse(text)
    arrays = {k: v.copy() for k, v in grid_arrays(spec).items()}
    if change is not None:
        change(arrays)
    write_operator(path, arrays, {"kind": "grid", "operator": str(spec), "dims": spec.dims,
                                  "construction": construction, "checks": "[]"})
    return path


def nudge(name: str, delta: float, where=(0, 0)):
    def change(arrays: dict) -> None:
        arrays[f"axis0/{name}"][where] += delta
    return change


# Just above the tolerance (3x): a tolerance loosened by 10x or more lets these pass.
NEAR = [
    ("fft_reference", "downsample", 3e-12),
    ("closed_form", "downsample", 3e-12),
    ("semigroup", "downsample", 3e-12),
    ("upsample_adjoint", "upsample", 3e-12),
    ("projector_stored", "projector", 3e-12),
]


@pytest.mark.parametrize(("check", "array", "delta"), NEAR, ids=[c for c, _, _ in NEAR])
def test_each_check_catches_a_corruption_just_above_its_tolerance(tmp_path: Path, check: str, array: str,
                                                                   delta: float) -> None:
    path = sealed(tmp_path / "near.h5", "Z28>Z20", nudge(array, delta, where=(3, 5)))
    verdict = {c.name: c for c in evaluate(path, signals=False).checks}
    assert not verdict[check].passed, str(verdict[check])
    assert verdict[check].error < 10 * GRID_TOLERANCES[check]  # just above, not far above
    assert {c.name: c.passed for c in evaluate(sealed(tmp_path / "ok.h5", "Z28>Z20"), signals=False).checks}[check]


@pytest.mark.parametrize(("n", "m"), [(28, 20), (30, 7), (29, 8), (100, 37), (12, 3)])
def test_the_semigroup_check_covers_both_ends_odd_even_divisors_and_not(n: int, m: int) -> None:
    sizes = intermediate_sizes(n, m)
    assert all(m <= s <= n for s in sizes)
    inner = [s for s in range(m + 1, n)]
    assert {m + 1, n - 1} <= set(sizes) and len(sizes) >= 4
    assert {s % 2 for s in sizes} == {0, 1}
    assert any(n % s for s in sizes if s < n)
    divisors = [s for s in inner if n % s == 0]
    assert not divisors or max(divisors) in sizes


@pytest.mark.parametrize(("text", "wrong"), [("Z28>Z20", 21), ("Z28>Z20", 27), ("Z30>Z7", 15), ("Z30>Z7", 8)])
def test_the_semigroup_check_catches_a_closed_form_wrong_at_one_intermediate_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, wrong: int) -> None:
    path = sealed(tmp_path / "ok.h5", text)
    exact = _grid.grid_matrix

    def wrong_at_one_size(a: int, b: int) -> np.ndarray:
        out = exact(a, b)
        return out * (1 + 1e-9) if wrong in (a, b) else out

    monkeypatch.setattr(_grid, "grid_matrix", wrong_at_one_size)
    verdict = {c.name: c.passed for c in evaluate(path, signals=False).checks}
    assert not verdict["semigroup"]


def test_the_resample_check_catches_a_runtime_wrong_only_when_upsampling(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from gscli.scale import _resample

    path = sealed(tmp_path / "ok.h5", "Z12x10>Z7x5")
    assert evaluate(path, signals=False).passed
    exact = _resample.resample

    def wrong_up(x, size, **kwargs):
        y = exact(x, size, **kwargs)
        return y * (1 + 1e-9) if tuple(size) != tuple(x.shape[-len(size):]) and y.numel() > x.numel() else y

    monkeypatch.setattr(_resample, "resample", wrong_up)
    verdict = {c.name: c.passed for c in evaluate(path, signals=False).checks}
    assert not verdict["resample_float64"]


def test_a_file_of_another_construction_is_not_up_to_date(tmp_path: Path) -> None:
    path = build_grid("Z28>Z20", out=tmp_path).path
    data = read_operator(path)
    write_operator(path, dict(data.arrays), {**{k: v for k, v in data.attrs.items()
                                                if k in ("kind", "operator", "dims", "checks")},
                                             "construction": "closed-form/1"})
    with pytest.raises(StoreError, match=r"was made by 'closed-form/1', not 'closed-form/2'.*--force"):
        build_grid("Z28>Z20", out=tmp_path)
    code, _, err = run("build", "Z28>Z20", "--out", str(tmp_path))
    assert code == 1 and "not an up-to-date Z28>Z20 operator" in err
    assert build_grid("Z28>Z20", out=tmp_path, force=True).status == "rebuilt"
    assert read_operator(path).attrs["construction"] == CONSTRUCTION == "closed-form/2"
    assert build_grid("Z28>Z20", out=tmp_path).status == "up-to-date"
