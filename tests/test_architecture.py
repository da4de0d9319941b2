"""The package's structure: no import cycles (every import counted, lazy ones too), the layering contracts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import_cycles.py"


def _cycles(package: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--package", str(package)], capture_output=True, text=True)


def test_gscli_has_no_import_cycles() -> None:
    result = _cycles(ROOT / "gscli")
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("0 import cycle(s) among "), result.stdout


@pytest.mark.parametrize("style", ["top", "function", "lazy"])
def test_a_cycle_is_found_however_it_is_imported(tmp_path: Path, style: str) -> None:
    """Negative control: a two-module cycle through a top-level, a function-level or an import_module import."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import g\n\ndef f():\n    return g\n")
    second = {
        "top": "from pkg import a\n",
        "function": "def g():\n    from pkg.a import f\n    return f\n",
        "lazy": "def g():\n    from importlib import import_module\n    return import_module(f\"pkg.{NAMES['x']}\")\n\nNAMES = {'x': 'a'}\n",
    }[style]
    (package / "b.py").write_text(second + ("\ndef g():\n    return 1\n" if style == "top" else ""))
    result = _cycles(package)
    assert result.returncode == 1 and "cycle among 2 modules: pkg.a, pkg.b" in result.stdout


def test_no_cycle_when_the_import_goes_one_way(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.a import f\n")
    (package / "a.py").write_text("def f():\n    from pkg.b import g\n    return g\n")
    (package / "b.py").write_text("def g():\n    return 1\n")
    result = _cycles(package)
    assert result.returncode == 0 and "0 import cycle(s) among 3 modules" in result.stdout


@pytest.mark.skipif(shutil.which("lint-imports") is None and not (Path(sys.executable).parent / "lint-imports").exists(),
                    reason="import-linter is in the test extra; CI runs lint-imports itself too")
def test_layering_contracts_hold_and_catch_a_wrong_import(tmp_path: Path) -> None:
    """The contracts in pyproject.toml pass on the package and fail on a copy whose runtime imports gscli.build."""
    lint = str(Path(sys.executable).parent / "lint-imports")
    ok = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout[-2000:]
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "gscli", copy / "gscli", ignore=shutil.ignore_patterns("__pycache__", "*.h5"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    source = copy / "gscli" / "nn" / "_source.py"
    source.write_text(source.read_text() + "\n\ndef _wrong():\n    from gscli.build import build\n\n    return build\n")
    env = {"PYTHONPATH": str(copy), "PATH": ""}
    bad = subprocess.run([lint, "--config", str(copy / "pyproject.toml"), "--no-cache"], cwd=copy, capture_output=True,
                         text=True, env=env)
    assert bad.returncode != 0 and "gscli.nn._source -> gscli.build" in bad.stdout, bad.stdout[-2000:]
