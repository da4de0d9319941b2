"""What a plain ``pip install gscli`` gives: the runtime and the shipped catalog, without the extras.

Every test here is marked ``wheel``: CI also runs them (``pytest -m wheel``) against the installed
wheel in a venv with numpy 2 and no extras but the test tools; tests that need an extra import it
with ``pytest.importorskip`` and so skip there and run in the full environment.

Missing modules are simulated in subprocesses by wrapping every ``sys.meta_path`` finder so that it
does not find them (as if not installed) and records every attempt, so "imports no X" means "never
even tried to import X".
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import gscli
from gscli import catalog
from gscli.errors import FormatError, StoreError
from gscli.fileformat import read_operator, write_operator
from gscli.nn import GroupDownsample, StoreFileIgnoredWarning
from gscli.specs import GridOperatorSpec

pytestmark = pytest.mark.wheel

#: Modules of the extras (not installed by ``pip install gscli``).
OPTIONAL = ("escnn", "scipy", "matplotlib", "sklearn", "mlxtend", "lie_learn")
#: The command line's base dependencies: installed with gscli, but never imported by the runtime.
CLI_BASE = ("click", "rich")
CLI_HINT = "install it with: pip install 'gscli[cli]'"
BUILD_HINT = "pip install 'gscli[build]'"

BLOCKER = """
import importlib.abc, sys
class _Hidden(importlib.abc.MetaPathFinder):  # wraps every finder: the blocked names are not installed
    names, tried = set({names!r}), []
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            self.tried.append(name)
            return None
        return self.inner.find_spec(name, path, target)
    def invalidate_caches(self):
        getattr(self.inner, "invalidate_caches", lambda: None)()
sys.meta_path[:] = [_Hidden(finder) for finder in sys.meta_path]
_BLOCKED = _Hidden
"""


def run_blocked(code: str, blocked: tuple[str, ...], cwd: Path, *args: str, module: bool = False):
    """Run ``code`` (or ``python -m code args`` if ``module``) with ``blocked`` modules refused.

    The subprocess imports the same gscli as this process (never one from ``cwd``).
    """
    env = {**os.environ, "PYTHONPATH": str(Path(gscli.__file__).resolve().parents[1]), "MPLBACKEND": "Agg"}
    prelude = BLOCKER.format(names=list(blocked))
    if module:
        code = prelude + f"import runpy, sys\nsys.argv = [{code!r}, *{list(args)!r}]\nrunpy.run_module({code!r}, run_name='__main__', alter_sys=True)\n"
    else:
        code = prelude + code
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def group_perm(cayley: np.ndarray, g: int) -> np.ndarray:
    """(lambda(g) f)[x] = f[g^{-1} x], as an index array: (lambda(g) f) = f[perm]."""
    identity = int(np.nonzero((cayley == np.arange(len(cayley))).all(axis=1))[0][0])
    inverse = int(np.nonzero(cayley[g] == identity)[0][0])
    return cayley[inverse]


# -- the installation itself ------------------------------------------------------------------


def test_this_is_the_environment_ci_says_it_is() -> None:
    """Where the tests run decides what they prove, so check it: in CI's wheel venv, gscli from
    site-packages (not the checkout), numpy 2, click and rich (base dependencies) and no optional
    module (GSCLI_WHEEL_VENV=1) or only the cli extra's (GSCLI_WHEEL_VENV=cli); anywhere else, every
    extra, so that no test skips for one."""
    kind = os.environ.get("GSCLI_WHEEL_VENV")
    installed = [m for m in OPTIONAL if importlib.util.find_spec(m) is not None]
    assert all(importlib.util.find_spec(m) is not None for m in CLI_BASE)
    if kind is None:
        assert installed == list(OPTIONAL), "the suite needs every extra: pip install -e '.[cli,build,data,test]'"
        return
    assert "site-packages" in Path(gscli.__file__).parts
    assert int(np.__version__.split(".")[0]) >= 2
    assert installed == {"1": [], "cli": ["scipy", "matplotlib"]}[kind]


def test_version_is_one_value_everywhere(tmp_path: Path) -> None:
    from importlib.metadata import version

    assert version("gscli") == gscli.__version__
    pytest.importorskip("click")
    for command in ([sys.executable, "-m", "gscli", "--version"], [str(Path(sys.executable).parent / "gscli"), "--version"]):
        if not Path(command[0]).exists():
            continue
        r = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=True)
        assert r.stdout == f"gscli, version {gscli.__version__}\n"


def test_runtime_and_file_reading_import_no_optional_module(tmp_path: Path) -> None:
    code = """
import sys, numpy as np, torch
import gscli, gscli.fileformat, gscli.catalog, gscli.nn
from gscli.nn import GroupDownsample
for spec in gscli.catalog.shipped_specs():
    data = gscli.fileformat.read_operator(gscli.catalog.shipped_path(spec))
    if data.kind == "grid":
        continue
    layer = GroupDownsample.from_catalog(spec.stem, build=False, canonicalize=spec.group.order <= 48)
    n = spec.group.order
    out = layer(torch.randn(2, 2 * n, 3))
    y = out.output if hasattr(out, "output") else out
    layer.upsample(y, getattr(out, "coset", None))
print(sorted(set(_BLOCKED.tried) | {m for m in sys.modules if m.split(".")[0] in _BLOCKED.names}))
"""
    r = run_blocked(code, OPTIONAL + CLI_BASE, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    # The same probe sees an import: the command line tries click at once.
    control = run_blocked("import sys\ntry:\n    import gscli.cli\nexcept ImportError:\n    pass\nprint(_BLOCKED.tried)", OPTIONAL + CLI_BASE, tmp_path)
    assert "click" in control.stdout


# -- the shipped catalog -------------------------------------------------------------------


def test_shipped_catalog_is_complete_and_every_file_verifies() -> None:
    specs = catalog.shipped_specs()
    assert len(specs) == len(set(specs)) >= 12
    assert sorted(p.name for p in catalog.FOLDER.glob("*.h5")) == sorted(f"{s.stem}.h5" for s in specs)
    for spec in specs:
        data = read_operator(catalog.shipped_path(spec))
        if isinstance(spec, GridOperatorSpec):
            assert data.kind == "grid" and data.attrs["operator"] == str(spec)
            continue
        assert data.spec == spec and data.attrs["rate"] == spec.rate
        assert data["downsample"].shape == (spec.subgroup.order, spec.group.order)
    assert sum(isinstance(s, GridOperatorSpec) for s in specs) >= 1
    assert catalog.shipped_path("D4>C2") is None and catalog.shipped_path("D12>D6") == catalog.FOLDER / "D12-D6.h5"


@pytest.mark.parametrize("name", ["C8>C4", "C16>C4", "D12>D6", "D12>C12", "O>T", "Oh>O", "I>C5", "Ih>I"])
def test_shipped_operator_applies_exactly_without_escnn(name: str, tmp_path: Path) -> None:
    """Loaded with no store and no escnn: forward is D on the fibers, bandlimited fields come back,
    and forward commutes with every h in H (the file's Cayley tables give the actions)."""
    layer = GroupDownsample.from_catalog(name, store=tmp_path, build=False).double()
    assert layer.source == str(catalog.shipped_path(name)) and not list(tmp_path.iterdir())
    data = read_operator(catalog.shipped_path(name))
    D, U, P = data["downsample"], data["upsample"], data["antialias"]
    n, m = D.shape[1], D.shape[0]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, n, 4))
    y = layer(torch.from_numpy(x.reshape(2, 3 * n, 4))).numpy().reshape(2, 3, m, 4)
    assert np.abs(y - np.einsum("ij,bcjs->bcis", D, x)).max() < 1e-12
    up = layer.upsample(torch.from_numpy(y.reshape(2, 3 * m, 4))).numpy().reshape(2, 3, n, 4)
    assert np.abs(up - np.einsum("ij,bcjs->bcis", U, y)).max() < 1e-12
    band = np.einsum("ij,bcjs->bcis", P, x)
    back = layer.upsample(layer(torch.from_numpy(band.reshape(2, 3 * n, 4)))).numpy().reshape(2, 3, n, 4)
    assert np.abs(back - band).max() < 1e-10
    # negative control: a field that is not bandlimited does not come back
    raw = layer.upsample(layer(torch.from_numpy(x.reshape(2, 3 * n, 4)))).numpy().reshape(2, 3, n, 4)
    assert np.abs(raw - x).max() > 1e-3
    nodes, gc, hc = data["subgroup_nodes"], data["group_cayley"], data["subgroup_cayley"]
    for i in range(m):
        moved = torch.from_numpy(x[:, :, group_perm(gc, int(nodes[i]))].reshape(2, 3 * n, 4))
        expected = y[:, :, group_perm(hc, i)]
        assert np.abs(layer(moved).numpy().reshape(2, 3, m, 4) - expected).max() < 1e-12


def _store_copy(name: str, store: Path, change=None) -> Path:
    """Write the shipped ``name`` into ``store``, its arrays changed by ``change`` (a valid file either way)."""
    data = read_operator(catalog.shipped_path(name))
    arrays = {k: v.copy() for k, v in data.arrays.items()}
    if change is not None:
        change(arrays)
    attrs = {k: v for k, v in data.attrs.items() if k not in ("format", "format_version", "numpy_version", "h5py_version", "checksum")}
    path = store / f"{name}.h5"
    write_operator(path, arrays, attrs)
    return path


def test_shipped_operator_comes_first_and_a_different_store_file_is_not_silently_ignored(tmp_path: Path) -> None:
    def shift(delta: float):
        def change(arrays: dict) -> None:
            arrays["upsample"][0, 0] += delta
        return change

    def load() -> tuple[GroupDownsample, list[warnings.WarningMessage]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer = GroupDownsample.from_catalog("D12-D6", store=tmp_path, build=False)
        return layer, [w for w in caught if issubclass(w.category, StoreFileIgnoredWarning)]

    shipped = str(catalog.shipped_path("D12-D6"))
    _store_copy("D12-D6", tmp_path)                      # a copy: used silently (it is the same operator)
    layer, caught = load()
    assert layer.source == shipped and caught == []
    _store_copy("D12-D6", tmp_path, shift(1e-13))        # rounding (another machine's LAPACK): same operator
    assert load()[1] == []
    path = _store_copy("D12-D6", tmp_path, shift(1e-8))  # another operator: shipped one used, and said so
    layer, caught = load()
    assert layer.source == shipped and len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{path} is not used: gscli ships its own D12>D6 operator ({shipped})")
    assert f"GroupDownsample.from_file({str(path)!r})" in message
    assert torch.equal(layer.operator_up, torch.from_numpy(read_operator(shipped)["upsample"]))
    path.write_bytes(b"not an operator")                 # a damaged store file: said too
    layer, caught = load()
    assert layer.source == shipped and "it does not verify" in str(caught[0].message)


def test_damaged_or_missing_shipped_file_is_refused_with_the_reinstall_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install = tmp_path / "site-packages" / "gscli" / "catalog"
    shutil.copytree(catalog.FOLDER, install)
    monkeypatch.setattr(catalog, "FOLDER", install.resolve())
    target = install / "D12-D6.h5"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    reinstall = f"this file ships with gscli: reinstall it with: pip install --force-reinstall --no-deps gscli=={gscli.__version__}"
    with pytest.raises(FormatError) as info:
        GroupDownsample.from_catalog("D12-D6", store=tmp_path / "store", build=False)
    assert str(info.value).startswith(f"{target.resolve()}: damaged: the file's sha256 is") or str(info.value).startswith(f"{target}: damaged")
    assert str(info.value).endswith(reinstall) and "\n" not in str(info.value)
    (install / "O-T.h5").unlink()                        # missing: reported, not looked up elsewhere
    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(catalog.shipped_path("O-T").with_name("Oh-O.h5"), store / "O-T.h5")
    with pytest.raises(FormatError, match=r"O-T.h5: no such operator file; this file ships with gscli: reinstall"):
        GroupDownsample.from_catalog("O-T", store=store, build=False)
    # negative control: the same damaged bytes elsewhere are refused without the reinstall advice
    elsewhere = tmp_path / "D12-D6.h5"
    shutil.copy(target, elsewhere)
    with pytest.raises(FormatError) as info:
        read_operator(elsewhere)
    assert "damaged" in str(info.value) and "reinstall" not in str(info.value)


def test_nothing_writes_into_the_shipped_catalog() -> None:
    from gscli.build import build

    before = {p.name: p.read_bytes() for p in catalog.FOLDER.iterdir() if p.is_file()}
    with pytest.raises(StoreError, match=r"holds the catalog shipped with gscli, which is read-only; pass another --out"):
        build("C8", subgroup="C4", out=catalog.FOLDER, force=True)
    assert {p.name: p.read_bytes() for p in catalog.FOLDER.iterdir() if p.is_file()} == before


# -- missing extras: one line naming the extra ------------------------------------------------


def test_command_line_works_without_any_extra(tmp_path: Path) -> None:
    """A plain ``pip install gscli`` is a command line: --version, inspect and eval of a shipped operator
    work with no extra; eval recomputes every guarantee (its Laplacian needs no scipy) and says in one
    note per skipped part which extra would add it."""
    shipped = str(catalog.shipped_path("D12-D6"))
    script = Path(sys.executable).parent / "gscli"
    runs = [lambda *args: run_blocked("gscli", OPTIONAL, tmp_path, *args, module=True)]
    if os.environ.get("GSCLI_WHEEL_VENV") == "1" and script.exists():  # the real console script, really without extras
        runs.append(lambda *args: subprocess.run([str(script), *args], capture_output=True, text=True, cwd=tmp_path,
                                                 timeout=300))
    for run in runs:
        r = run("--version")
        assert (r.returncode, r.stdout, r.stderr) == (0, f"gscli, version {gscli.__version__}\n", "")
        r = run("inspect", shipped, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["operator"] == "D12>D6"
        r = run("eval", shipped, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        report = json.loads(r.stdout)["files"][0]
        names = {c["name"] for c in report["checks"] if c["passed"]}
        assert report["passed"] and len(names) == len(report["checks"])
        assert {"laplacian_grading", "aliasing_cost", "band_table", "downsample_equivariance", "float32_downsample"} <= names
        assert [s["signal"] for s in report["signals"]][-1] == "white noise"
        skipped = [note for note in report["notes"] if "skipped" in note]
        assert skipped and all("\n" not in note and "pip install 'gscli[" in note for note in skipped)
        r = run("eval", shipped)  # the table, not only JSON
        assert r.returncode == 0 and "laplacian_grading" in r.stdout and "FAILED" not in r.stdout, r.stderr


def test_incomplete_install_without_click_or_rich_names_what_is_missing(tmp_path: Path) -> None:
    for blocked, requirement in ((("click",), "click>=8.1"), (("rich",), "rich>=13")):
        r = run_blocked("gscli", blocked, tmp_path, "--version", module=True)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == (f"Error: the gscli command line needs {blocked[0]}, a dependency of gscli that is not "
                            f"installed; install it with: pip install '{requirement}'\n")


def test_building_without_escnn_names_the_build_extra(tmp_path: Path) -> None:
    code = ("from gscli.nn import GroupDownsample\n"
            f"GroupDownsample.from_catalog('D4-C2', store={str(tmp_path)!r})\n")
    r = run_blocked(code, ("escnn",), tmp_path)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("gscli.errors.FormatError: ")
    assert BUILD_HINT in r.stderr and not (tmp_path / "D4-C2.h5").exists()
    pytest.importorskip("click")
    pytest.importorskip("rich")
    for args in (["build", "O", "--rate", "2", "--out", str(tmp_path)], ["subgroups", "Ih"]):  # C_N, D_N need no escnn
        r = run_blocked("gscli", ("escnn",), tmp_path, *args, module=True)
        assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith("Error: building operators needs escnn") and BUILD_HINT in r.stderr
    assert not list(tmp_path.glob("*.h5"))


def test_plotting_without_matplotlib_names_the_cli_extra(tmp_path: Path) -> None:
    pytest.importorskip("click")
    pytest.importorskip("rich")
    shipped = str(catalog.shipped_path("C8-C4"))
    png = tmp_path / "c8.png"
    r = run_blocked("gscli", ("matplotlib",), tmp_path, "inspect", shipped, "--plot", str(png), module=True)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"Error: plotting (--plot) needs matplotlib, which is not installed; {CLI_HINT}\n"
    assert not png.exists()
    r = run_blocked("gscli", ("matplotlib",), tmp_path, "inspect", shipped, "--json", module=True)
    assert r.returncode == 0 and json.loads(r.stdout)["operator"] == "C8>C4"  # inspect itself needs no matplotlib


def test_eval_without_matplotlib_checks_everything_and_says_what_it_skipped(tmp_path: Path) -> None:
    pytest.importorskip("click")
    pytest.importorskip("escnn")  # the image experiment needs escnn's convolutions before matplotlib's images
    shipped = str(catalog.shipped_path("C8-C4"))
    r = run_blocked("gscli", ("matplotlib",), tmp_path, "eval", shipped, "--json", module=True)
    notes = json.loads(r.stdout)["files"][0]["notes"] if r.returncode == 0 else r.stderr
    assert r.returncode == 0 and any("eval's real images needs matplotlib" in note and CLI_HINT in note for note in notes)
