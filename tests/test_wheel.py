"""The wheel and the sdist: package data (the shipped catalog), dependencies and the entry point.

CI builds them once (``python -m build``) and points ``GSCLI_DIST`` at the folder; otherwise this
test builds them itself from a copy of the checkout with setuptools' own build hooks.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import gscli
from gscli import catalog

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("GSCLI_DIST"):
        return Path(os.environ["GSCLI_DIST"])
    pytest.importorskip("setuptools")
    if catalog.FOLDER != ROOT / "gscli" / "catalog":
        pytest.skip("gscli is not imported from this checkout")
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gscli", src / "gscli", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for hook in ("build_sdist", "build_wheel"):  # one process each: the second hook in the same process loses its wheel
        code = f"import sys\nfrom setuptools import build_meta\nbuild_meta.{hook}(sys.argv[1])\n"
        subprocess.run([sys.executable, "-c", code, str(out)], cwd=src, check=True, capture_output=True, timeout=600)
    return out


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}, found {found}"
    return found[0]


def test_wheel_holds_the_catalog_and_says_its_dependencies(dist: Path) -> None:
    version = gscli.__version__
    with zipfile.ZipFile(only(dist, f"gscli-{version}-py3-none-any.whl")) as wheel:
        names = set(wheel.namelist())
        for path in sorted(catalog.FOLDER.iterdir()):
            if path.suffix in (".h5", ".txt", ".py"):
                assert wheel.read(f"gscli/catalog/{path.name}") == path.read_bytes(), path.name
        assert {"gscli/py.typed", "gscli/__main__.py", "gscli/nn/_layer.py", "gscli/cli/build.py"} <= names
        assert not any(n.startswith(("tests/", "scripts/", "operators/")) for n in names)
        info = f"gscli-{version}.dist-info"
        meta = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    requires = [r.replace(" ", "") for r in meta.get_all("Requires-Dist")]
    base = sorted(r for r in requires if "extra==" not in r)
    # the runtime's numpy, h5py, torch and the command line's click and rich: `pip install gscli` runs `gscli`
    assert [r.split(">")[0].split("<")[0].split("=")[0] for r in base] == ["click", "h5py", "numpy", "rich", "torch"]
    assert "numpy>=1.24" in base  # numpy 2 allowed where users are
    assert 'numpy<2;extra=="build"' in requires and 'escnn==1.0.11;extra=="build"' in requires
    assert 'gscli[cli];extra=="build"' in requires
    assert {r.split(";")[0].split(">")[0] for r in requires if 'extra=="cli"' in r} == {"matplotlib", "scipy"}
    assert set(meta.get_all("Provides-Extra")) == {"cli", "build", "data", "test"}
    assert meta["Version"] == version
    assert "gscli = gscli.__main__:main" in entry_points


def test_sdist_holds_the_catalog(dist: Path) -> None:
    with tarfile.open(only(dist, f"gscli-{gscli.__version__}.tar.gz")) as sdist:
        top = f"gscli-{gscli.__version__}"
        for path in sorted(catalog.FOLDER.glob("*.h5")) + [catalog.CATALOG]:
            member = sdist.extractfile(f"{top}/gscli/catalog/{path.name}")
            assert member is not None and member.read() == path.read_bytes(), path.name
        assert sdist.extractfile(f"{top}/pyproject.toml") is not None
