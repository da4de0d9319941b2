"""The shipped catalog files are exactly what this version's ``gscli build`` writes, bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gscli import catalog
from gscli.fileformat import read_operator

pytestmark = pytest.mark.wheel  # selected in the wheel venv, where it skips (no escnn)

ROOT = Path(__file__).resolve().parents[1]
#: Attributes that name the producer (versions), not the operator; everything else must match.
PRODUCER = {"gscli_version", "escnn_version", "numpy_version", "h5py_version"}


def identical(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return a.tolist() == b.tolist() if a.dtype == object else a.tobytes() == b.tobytes()


def test_shipped_files_equal_a_fresh_build_bit_for_bit(tmp_path: Path) -> None:
    pytest.importorskip("escnn")
    if catalog.FOLDER != ROOT / "gscli" / "catalog":
        pytest.skip("gscli is not imported from this checkout")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "regenerate_catalog.py"), "--check", "--out", str(fresh)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("0 out of date"), r.stdout + r.stderr
    specs = catalog.shipped_specs()
    assert sorted(p.name for p in fresh.glob("*.h5")) == sorted(f"{s.stem}.h5" for s in specs)
    for spec in specs:
        built, shipped = read_operator(fresh / f"{spec.stem}.h5"), read_operator(catalog.shipped_path(spec))
        assert sorted(built.arrays) == sorted(shipped.arrays)
        for name in built.arrays:
            assert identical(built[name], shipped[name]), f"{spec}: {name} differs from a fresh build"
        keys = (set(built.attrs) | set(shipped.attrs)) - PRODUCER
        assert {k: built.attrs.get(k) for k in keys} == {k: shipped.attrs.get(k) for k in keys}, spec
    # negative control: one unit in the last place of one entry is a difference, for this test and the script's
    changed = read_operator(fresh / "D12-D6.h5")
    changed.arrays["upsample"] = changed["upsample"].copy()
    changed.arrays["upsample"][3, 2] = np.nextafter(changed["upsample"][3, 2], np.inf)
    assert not identical(changed["upsample"], read_operator(catalog.shipped_path("D12-D6"))["upsample"])
    changed.attrs["checksum"] = "sha256:0"
    assert catalog.differences(changed, read_operator(catalog.shipped_path("D12-D6"))) == ["arrays upsample"]
