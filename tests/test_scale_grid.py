"""Grid operators (DESIGN §7) as operator files: spec grammar, build -> inspect -> eval through the CLI,
the identities against independent references, negative controls for every check, damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gscli import fileformat
from gscli.build import build_spec as build_grid
from gscli.cli import main
from gscli.errors import CheckError, FormatError, SpecError
from gscli.evaluate import evaluate
from gscli.families.grid._operator import CONSTRUCTION, GRID_TOLERANCES, build_grid_operator, check_grid, grid_arrays
from gscli.fileformat import read_operator, write_operator
from gscli.specs import GridOperatorSpec, GridSpec, parse_operator_spec
from gscli.store import operator_path


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def kept(m: int) -> list[int]:
    """Frequencies of Z_M whose cosine and sine both live on M points: 2|k| < M (the odd band)."""
    return [k for k in range(-m, m + 1) if 2 * abs(k) < m]


def fft_operator(n: int, m: int) -> np.ndarray:
    """Column j: numpy's FFT of e_j, keep 2|k| < min(N, M), place on a size-M spectrum, inverse FFT (independent of gscli)."""
    out = np.zeros((m, n))
    for j in range(n):
        spectrum = np.fft.fft(np.eye(n)[j]) / n
        target = np.zeros(m, dtype=complex)
        for k in kept(min(n, m)):
            target[k % m] = spectrum[k % n]
        out[:, j] = np.fft.ifft(target).real * m
    return out


# ---------------------------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(("text", "canonical", "axes"), [
    ("Z28>Z20", "Z28>Z20", ((28, 20),)),
    ("Z28-Z20", "Z28>Z20", ((28, 20),)),
    (" Z28 > Z20 ", "Z28>Z20", ((28, 20),)),
    ("Z28^2>Z20^2", "Z28x28>Z20x20", ((28, 20), (28, 20))),
    ("Z28x28>Z14^2", "Z28x28>Z14x14", ((28, 14), (28, 14))),
    ("Z12x10>Z7x5", "Z12x10>Z7x5", ((12, 7), (10, 5))),
    ("Z6x5x4>Z3x5x2", "Z6x5x4>Z3x5x2", ((6, 3), (5, 5), (4, 2))),
    ("Z8^3>Z8^3", "Z8x8x8>Z8x8x8", ((8, 8),) * 3),
])
def test_grid_specs_parse_and_print_back(text: str, canonical: str, axes) -> None:
    spec = GridOperatorSpec.parse(text)
    assert str(spec) == canonical and spec.axes == axes
    assert GridOperatorSpec.parse(str(spec)) == spec and parse_operator_spec(spec.stem) == spec
    assert operator_path(text, "store") == Path("store") / f"{spec.stem}.h5"
    assert hash(spec) == hash(GridOperatorSpec.parse(canonical))


@pytest.mark.parametrize(("text", "message"), [
    ("Z20>Z28", "write the finer grid first (N >= M on every axis): 'Z28>Z20'"),
    ("Z28x20>Z30x10", "axis 0 grows while another shrinks"),
    ("Z28>Z20x20", "both grids need the same number of axes (Z28 has 1, Z20x20 has 2)"),
    ("Z0>Z0", "unknown grid 'Z0'; allowed: Z<N> (1-D)"),
    ("z28>z20", "unknown grid 'z28'"),
    ("Z28^4>Z20^4", "the power form is Z<N>^d with one size N and d = 1, 2 or 3"),
    ("Z2x2^2>Z1^4", "unknown grid 'Z2x2^2'"),
    ("Z4097>Z2", "size 4097 is outside 1..4096"),
    ("Z2x2x2x2>Z1x1x1x1", "unknown grid 'Z2x2x2x2'"),
    ("Z28", "must be FINE>COARSE (or FINE-COARSE), e.g. 'Z28>Z20'"),
    ("Z28>Z20>Z10", "must be FINE>COARSE"),
    ("Z28.5>Z20", "unknown grid 'Z28.5'"),
])
def test_bad_grid_specs_say_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=None) as info:
        parse_operator_spec(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_grid_spec_values_are_checked_too() -> None:
    with pytest.raises(SpecError, match="1 to 3 integers"):
        GridSpec(())
    with pytest.raises(SpecError, match="outside 1..4096"):
        GridSpec((0,))


@pytest.mark.parametrize(("spec", "named"), [
    ("Z20>Z28", "'Z20>Z28'"), ("Z28>Z20x20", "'Z28>Z20x20'"), ("Z0>Z0", "'Z0'"), ("Z28", "'Z28'"),
    ("Z9999>Z2", "'Z9999'"), ("Z8^5>Z2^5", "'Z8^5'"),
])
def test_cli_refuses_bad_grid_specs_and_writes_nothing(tmp_path: Path, spec: str, named: str) -> None:
    code, out, err = run("build", spec, "--out", str(tmp_path))
    assert code == 2, (out, err)
    assert err.startswith("Error: ") and err.count("\n") == 1 and named in err and out == ""
    assert list(tmp_path.iterdir()) == []


def test_cli_grid_build_refuses_group_options(tmp_path: Path) -> None:
    code, _, err = run("build", "Z28>Z20", "--rate", "2", "--out", str(tmp_path))
    assert code == 2 and "--rate and --subgroup are for group operators" in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- round trips

ROUND_TRIPS = [
    "Z9>Z3",          # 1-D, odd M, divisor
    "Z16>Z8",         # 1-D, even M, divisor: the group operator differs by the cosine at M/2
    "Z10>Z7",         # 1-D, odd M, non-divisor
    "Z28x28>Z20x20",  # 2-D, even M, non-divisor (MNIST 28 -> 20)
    "Z12x10>Z6x5",    # 2-D, even and odd M, divisors
    "Z6x5x4>Z3x5x2",  # 3-D, with an axis kept at odd size (the identity)
]


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_build_inspect_eval_round_trip(tmp_path: Path, text: str) -> None:
    spec = GridOperatorSpec.parse(text)
    code, out, err = run("build", text, "--out", str(tmp_path), "--json")
    assert code == 0, err
    (entry,) = json.loads(out)["operators"]
    path = tmp_path / f"{spec.stem}.h5"
    assert entry["operator"] == str(spec) and entry["status"] == "built" and Path(entry["file"]) == path
    assert entry["checks"] and all(c["passed"] for c in entry["checks"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporaries

    data = read_operator(path)  # the one verified reader
    assert data.kind == "grid" and data.spec == spec and data.attrs["checksum"] == entry["checksum"]
    for axis, (n, m) in enumerate(spec.axes):
        d, u = data[f"axis{axis}/downsample"], data[f"axis{axis}/upsample"]
        assert d.shape == (m, n) and u.shape == (n, m) and d.dtype == np.float64
        assert np.abs(d - fft_operator(n, m)).max() < 1e-12
        assert np.abs(u - fft_operator(m, n)).max() < 1e-12  # zero-padding the spectrum
        assert np.abs(data[f"axis{axis}/projector"] - u @ d).max() < 1e-12
        assert data[f"axis{axis}/frequencies"].tolist() == kept(m)

    code, out, err = run("inspect", str(path), "--json", "--plot", str(tmp_path / "grid.png"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "grid" and summary["operator"] == str(spec) and summary["dims"] == spec.dims
    assert summary["checksum"]["status"] == "verified" and summary["stored_checks"]["failed"] == []
    for ax, (n, m) in zip(summary["axes"], spec.axes):
        assert (ax["fine"], ax["coarse"], ax["divides"]) == (n, m, n % m == 0)
        assert ax["kept_frequencies"] == kept(m) and ax["dropped_nyquist"] == (m % 2 == 0)
        c = ax["conditioning"]  # D sends a unit Fourier mode in the band to sqrt(M/N) times one
        assert abs(c["downsample_norm"] - np.sqrt(m / n)) < 1e-12 and abs(c["upsample_norm"] - np.sqrt(n / m)) < 1e-12
        assert c["rank"] == len(kept(m)) and abs(c["band_condition"] - 1) < 1e-12
    png = (tmp_path / "grid.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000

    code, out, err = run("inspect", str(path))
    assert code == 0 and str(spec) in out and "verified" in out and "cond. on band" in out

    code, out, err = run("eval", str(path), "--json")
    assert code == 0, err
    (report,) = json.loads(out)["files"]
    names = {c["name"] for c in report["checks"]}
    expected = set(GRID_TOLERANCES)
    if not any(n % m == 0 for n, m in spec.axes):
        expected -= {"sampled_projector", "group_operator"}
    assert names == expected and report["passed"] and report["kind"] == "grid"
    (signal,) = report["signals"]
    # real images are not bandlimited: plain subsampling folds energy into the output, the operator none
    assert signal["aliasing"]["operator"] < 1e-20 and signal["aliasing"]["plain"] > 1e-3
    assert signal["reconstruction"]["operator"] <= signal["reconstruction"]["plain"]

    code, out, _ = run("eval", str(path))
    assert code == 0 and "resample_float32" in out and "aliasing energy, plain" in out


def test_build_again_is_up_to_date_and_force_rebuilds(tmp_path: Path) -> None:
    first = build_grid("Z16>Z8", out=tmp_path)
    again = build_grid("Z16-Z8", out=tmp_path)
    assert (first.status, again.status) == ("built", "up-to-date") and again.checksum == first.checksum
    assert build_grid("Z16>Z8", out=tmp_path, force=True).status == "rebuilt"


def test_a_different_file_under_the_name_is_not_overwritten(tmp_path: Path) -> None:
    other = build_grid("Z16>Z4", out=tmp_path).path
    other.rename(tmp_path / "Z16-Z8.h5")
    code, _, err = run("build", "Z16>Z8", "--out", str(tmp_path))
    assert code == 1 and "holds Z16>Z4, not Z16>Z8" in err and "pass --force" in err
    assert read_operator(tmp_path / "Z16-Z8.h5").spec == GridOperatorSpec.parse("Z16>Z4")


def test_catalog_with_group_and_grid_operators(tmp_path: Path) -> None:
    (tmp_path / "catalog.txt").write_text("C8>C4\nZ28x28>Z20x20  # images\nZ9-Z3\n")
    code, out, err = run("build", "--out", str(tmp_path), "--json")
    assert code == 0, err
    assert [o["operator"] for o in json.loads(out)["operators"]] == ["C8>C4", "Z28x28>Z20x20", "Z9>Z3"]
    code, out, err = run("eval", "--catalog", "--out", str(tmp_path), "--json")
    assert code == 0, err
    files = json.loads(out)["files"]
    assert [f["kind"] for f in files] == ["group", "grid", "grid"] and all(f["passed"] for f in files)


def test_shipped_catalog_has_grid_operators() -> None:
    from gscli.catalog import CATALOG, read_catalog

    specs = read_catalog(CATALOG)
    assert {str(s) for s in specs if isinstance(s, GridOperatorSpec)} >= {"Z28x28>Z20x20", "Z28x28>Z14x14"}


def test_runtime_layer_refuses_grid_files(tmp_path: Path) -> None:
    from gscli.nn import GroupDownsample

    path = build_grid("Z16>Z8", out=tmp_path).path
    with pytest.raises(FormatError, match="holds a grid operator .*gscli.scale.resample"):
        GroupDownsample.from_file(path)


def test_group_operator_files_still_read_as_groups(tmp_path: Path) -> None:
    from gscli.build import build

    path = build("C8", subgroup="C4", out=tmp_path).path
    import h5py

    with h5py.File(path) as f:
        assert "kind" not in f.attrs  # files written before kinds existed look exactly like this
    data = read_operator(path)
    assert data.kind == "group" and str(data.spec) == "C8>C4"


# ---------------------------------------------------------------------------------------------- identities


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 1), (2, 2), (7, 7), (6, 6), (9, 3), (16, 8), (12, 4), (10, 7),
                                      (28, 20), (28, 14), (27, 10), (64, 48), (33, 32)])
def test_every_identity_holds_on_built_operators(n: int, m: int) -> None:
    op = build_grid_operator(f"Z{n}>Z{m}")
    checks = check_grid(op.spec, op.arrays)
    assert all(c.passed for c in checks), [str(c) for c in checks if not c.passed]
    names = {c.name for c in checks}
    assert {"sampled_projector", "group_operator"} <= names if n % m == 0 else not names & {"sampled_projector", "group_operator"}


@pytest.mark.parametrize(("n", "m"), [(16, 8), (12, 4), (9, 3), (8, 8)])
def test_relation_to_gscli_cyclic_group_operator(n: int, m: int) -> None:
    """For M | N, D_{N->M} is gscli's C_N -> C_M operator (solved with escnn) except the cosine at M/2."""
    from conftest import built

    group = built(f"C{n}", f"C{m}").solution.downsample
    grid = build_grid_operator(f"Z{n}>Z{m}").arrays["axis0/downsample"]
    i, j = np.arange(m)[:, None], np.arange(n)[None, :]
    # the cosine cos(pi M j / N) on Z_N, sampled at j = iR: (-1)^i; its projector's rows, with weight 2/N
    # (1/N when M = N: then +M/2 and -M/2 are one bin)
    cosine = np.cos(np.pi * m * j / n) * (-1.0) ** i * (2 if n > m else 1) / n if m % 2 == 0 else 0.0
    assert np.abs(group - grid - cosine).max() < 1e-12
    if m % 2 == 0:
        assert np.abs(group - grid).max() > 0.05  # the difference is real, not rounding


# ---------------------------------------------------------------------------------------------- negative controls


def write_grid(path: Path, text: str, change=None) -> Path:
    """A correctly sealed grid file (valid header, digest and checksum) whose arrays ``change`` alters."""
    spec = GridOperatorSpec.parse(text)
    arrays = {k: v.copy() for k, v in grid_arrays(spec).items()}
    if change is not None:
        change(arrays, spec)
    attrs = {"kind": "grid", "operator": str(spec), "dims": spec.dims, "construction": CONSTRUCTION, "checks": "[]"}
    write_operator(path, arrays, attrs)
    return path


def nyquist_trap(arrays: dict, spec: GridOperatorSpec) -> None:
    """The published code's downscale: the output's Nyquist bin gets (X[M/2] + X[-M/2]) / 2."""
    for axis, (n, m) in enumerate(spec.axes):
        d = arrays[f"axis{axis}/downsample"] + np.outer((-1.0) ** np.arange(m), np.cos(np.pi * m * np.arange(n) / n)) / n
        u = (n / m) * d.T
        arrays[f"axis{axis}/downsample"], arrays[f"axis{axis}/upsample"], arrays[f"axis{axis}/projector"] = d, u, u @ d


@pytest.mark.parametrize("text", ["Z16>Z8", "Z28x28>Z20x20", "Z12>Z12"])
def test_eval_fails_on_the_nyquist_trap(tmp_path: Path, text: str) -> None:
    path = write_grid(tmp_path / "trap.h5", text, nyquist_trap)
    read_operator(path)  # the file itself is sound: only the mathematics is wrong
    code, out, err = run("eval", str(path), "--json", "--no-signals")
    assert code == 1 and "failed" in err
    failing = {c["name"] for c in json.loads(out)["files"][0]["checks"] if not c["passed"]}
    # consistent with itself (U = (N/M) D^T, P = U D, stored band honest), and still caught by the mathematics
    # (for M = N the trap is the identity: a projector, but onto one frequency too many)
    assert {"projector_trace", "downsample_upsample", "semigroup", "closed_form", "fft_reference"} <= failing
    assert ("projector_idempotent" in failing) == (text != "Z12>Z12")
    assert not failing & {"upsample_adjoint", "projector_stored", "projector_symmetric", "band"}


def _add(name: str, delta: float, axis: int = 0, where=(0, 0)):
    def change(arrays: dict, spec: GridOperatorSpec) -> None:
        arrays[f"axis{axis}/{name}"][where] += delta
    return change


def _scale(factor: float):
    def change(arrays: dict, spec: GridOperatorSpec) -> None:
        arrays["axis0/downsample"] *= factor
        arrays["axis0/projector"] = arrays["axis0/upsample"] @ arrays["axis0/downsample"]
    return change


def _one_sided(arrays: dict, spec: GridOperatorSpec) -> None:
    """Keep frequencies 0..2h instead of -h..h (the published code's one-sided complex kernels)."""
    f = arrays["axis0/frequencies"]
    arrays["axis0/frequencies"] = np.arange(len(f), dtype=np.int64)


def _shifted_band(arrays: dict, spec: GridOperatorSpec) -> None:
    arrays["axis0/frequencies"] = arrays["axis0/frequencies"] + 1


# Each check with a corruption just above its tolerance (or structurally wrong) that it must catch.
NEGATIVE = [
    ("band", "Z16>Z8", _shifted_band),
    ("realness", "Z16>Z8", _one_sided),
    ("fft_reference", "Z28>Z20", _add("downsample", 1e-10)),
    ("closed_form", "Z28>Z20", _add("downsample", 1e-10)),
    ("upsample_adjoint", "Z28>Z20", _add("upsample", 1e-10)),
    ("projector_stored", "Z28>Z20", _add("projector", 1e-10)),
    ("projector_symmetric", "Z28>Z20", _add("upsample", 1e-10, where=(3, 1))),
    ("projector_idempotent", "Z28>Z20", _scale(1 + 1e-10)),
    ("projector_trace", "Z28>Z20", _scale(1 + 1e-9)),
    ("downsample_upsample", "Z28>Z20", _scale(1 + 1e-10)),
    ("semigroup", "Z28>Z20", _add("downsample", 1e-10)),
    ("sampled_projector", "Z16>Z8", _add("downsample", 1e-10, where=(1, 5))),
    ("group_operator", "Z16>Z8", _add("downsample", 1e-10)),
    ("resample_float64", "Z12x10>Z7x5", _add("downsample", 1e-10, axis=1)),
    ("closed_form", "Z12x10x6>Z7x5x3", _add("downsample", 1e-10, axis=2, where=(2, 4))),
]


@pytest.mark.parametrize(("check", "text", "change"), NEGATIVE, ids=[f"{c}-{t}" for c, t, _ in NEGATIVE])
def test_each_check_catches_its_corruption(tmp_path: Path, check: str, text: str, change) -> None:
    path = write_grid(tmp_path / "bad.h5", text, change)
    report = evaluate(path, signals=False)
    assert report.error is None, report.error  # sealed correctly: the reader accepts it
    verdict = {c.name: c for c in report.checks}
    assert not verdict[check].passed, str(verdict[check])
    assert not report.passed


def test_float32_check_catches_a_runtime_that_loses_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from gscli.scale import _resample

    path = write_grid(tmp_path / "ok.h5", "Z28x28>Z20x20")
    assert evaluate(path, signals=False).passed
    exact = _resample.resample

    def lossy(x: torch.Tensor, size, method: str = "auto"):
        y = exact(x, size, method)
        return y * (1 + 1e-4) if y.dtype == torch.float32 else y

    monkeypatch.setattr(_resample, "resample", lossy)
    verdict = {c.name: c.passed for c in evaluate(path, signals=False).checks}
    assert verdict["resample_float64"] and not verdict["resample_float32"]


def test_cli_eval_fails_on_a_perturbed_matrix_with_a_valid_seal(tmp_path: Path) -> None:
    path = write_grid(tmp_path / "Z28x28-Z20x20.h5", "Z28x28>Z20x20", _add("downsample", 1e-9, axis=1, where=(5, 7)))
    code, out, err = run("eval", str(path))
    assert code == 1 and "FAILED" in out and "closed_form failed" in err
    code, out, _ = run("inspect", str(path), "--json")  # inspect shows it (it holds no build-time checks)
    assert code == 0 and json.loads(out)["checksum"]["status"] == "verified"


def test_build_writes_nothing_when_a_check_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gscli.families.grid import _operator as _grid

    def broken(spec):
        arrays = grid_arrays(spec)
        nyquist_trap(arrays, spec)
        return arrays

    monkeypatch.setattr(_grid, "grid_arrays", broken)
    with pytest.raises(CheckError, match="Z16>Z8: check failed, nothing written: .*projector_idempotent: FAILED"):
        build_grid("Z16>Z8", out=tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- damaged files


@pytest.fixture
def grid_file(tmp_path: Path) -> Path:
    return build_grid("Z28x28>Z20x20", out=tmp_path).path


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("command", ["inspect", "eval"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_damaged_grid_files_are_refused(grid_file: Path, command: str, damage: str) -> None:
    size = grid_file.stat().st_size
    if damage == "flip":
        _flip(grid_file, size // 2)
    elif damage == "truncate":
        grid_file.write_bytes(grid_file.read_bytes()[: size - 100])
    else:
        grid_file.write_bytes(grid_file.read_bytes() + b"\0")
    code, _, err = run(command, str(grid_file), "--json")
    assert code == 1
    expected = {"flip": "damaged: the file's sha256", "truncate": "truncated", "append": "trailing bytes"}[damage]
    assert expected in err


def test_unknown_kind_asks_for_an_upgrade(grid_file: Path) -> None:
    import h5py

    with h5py.File(grid_file, "r+") as f:  # a file from a newer gscli: another kind, sealed correctly
        f.attrs["kind"] = "wavelet"
    fileformat._seal(grid_file)
    with pytest.raises(FormatError, match="of kind 'wavelet', which this gscli does not know .* upgrade gscli"):
        read_operator(grid_file)
    for command in ("inspect", "eval"):
        code, _, err = run(command, str(grid_file))
        assert code == 1 and "upgrade gscli" in err, err


def test_shapes_that_disagree_with_the_spec_are_refused(tmp_path: Path) -> None:
    spec = GridOperatorSpec.parse("Z9>Z3")
    arrays = grid_arrays(GridOperatorSpec.parse("Z9>Z4"))  # arrays of another operator
    attrs = {"kind": "grid", "operator": str(spec), "dims": 1, "construction": CONSTRUCTION}
    with pytest.raises(FormatError, match=r"'axis0/downsample' has shape \(4, 9\), expected \(3, 9\) for Z9>Z3"):
        write_operator(tmp_path / "Z9-Z3.h5", arrays, attrs)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FormatError, match="missing datasets axis1/downsample"):
        write_operator(tmp_path / "x.h5", arrays, {**attrs, "dims": 2, "operator": "Z9x9>Z4x4"})


def test_reading_a_grid_file_does_not_import_torch() -> None:
    """inspect on a grid file is numpy + h5py: torch (seconds to import) loads only for tensors."""
    import subprocess
    import sys

    from gscli.catalog import shipped_path

    code = (
        "import sys\n"
        "from gscli.inspect import summarize\n"
        f"summarize({str(shipped_path('Z28x28>Z20x20'))!r})\n"
        "import gscli.scale\n"
        "gscli.scale.resample_matrix(5, 3)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
