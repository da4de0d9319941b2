"""The shipped catalog files are what this version's ``gscli build`` writes, on any CPU.

BLAS and LAPACK pick their kernels per CPU, so a fresh build agrees with the shipped files in every
discrete result exactly and in every float to rounding only (:func:`gscli.catalog.differences`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gscli import catalog
from gscli.fileformat import OperatorData, read_operator

pytestmark = pytest.mark.wheel  # selected in the wheel venv, where the fresh build skips (no escnn)

ROOT = Path(__file__).resolve().parents[1]
#: Attributes that name the producer (versions), not the operator; everything else must match.
PRODUCER = {"gscli_version", "escnn_version", "numpy_version", "h5py_version"}
EPS = np.finfo(np.float64).eps


def test_shipped_files_equal_a_fresh_build_on_any_cpu(tmp_path: Path) -> None:
    """Run under any ``OPENBLAS_CORETYPE``: the script's check and this test's own comparison agree."""
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
        assert catalog.differences(built, shipped) == []
        # the same, compared here independently: discrete content exactly, floats to DESIGN §4's limits
        assert sorted(built.arrays) == sorted(shipped.arrays)
        for name in built.arrays:
            x, y = built[name], shipped[name]
            assert (x.dtype, x.shape) == (y.dtype, y.shape), f"{spec}: {name}"
            if x.dtype.names:
                assert x[["dimension", "kept"]].tolist() == y[["dimension", "kept"]].tolist(), spec
                x, y = x["eigenvalue"], y["eigenvalue"]
            if x.dtype.kind != "f":
                assert x.tolist() == y.tolist(), f"{spec}: {name} differs from a fresh build"
                continue
            if name == "basis":
                x, y = x @ x.T, y @ y.T
            limit = 1e-10 if name == "upsample" else 1e-12
            assert np.abs(x - y).max() <= limit * max(1.0, np.abs(y).max()), f"{spec}: {name} differs from a build"
        keys = (set(built.attrs) | set(shipped.attrs)) - PRODUCER - {"checksum", "checks", "aliasing_cost"}
        assert {k: built.attrs.get(k) for k in keys} == {k: shipped.attrs.get(k) for k in keys}, spec
        if "aliasing_cost" in shipped.attrs:
            assert built.attrs["aliasing_cost"] == pytest.approx(shipped.attrs["aliasing_cost"], rel=1e-12, abs=1e-12)
        verdicts = [[(c["name"], c["tolerance"], c["passed"]) for c in json.loads(d.attrs["checks"])]
                    for d in (built, shipped)]
        assert verdicts[0] == verdicts[1], spec


# -- what catalog.differences calls the same operator, and what not -------------------------------


def _copy(data: OperatorData) -> OperatorData:
    return OperatorData({k: v.copy() for k, v in data.arrays.items()}, dict(data.attrs))


def _rounded(data: OperatorData, rng: np.random.Generator) -> OperatorData:
    """``data`` as another CPU's kernels could write it: every float a few ulps off, another basis of V,
    other measured check errors and another checksum and producer."""
    out = _copy(data)
    for name, x in out.arrays.items():
        if x.dtype.names:
            x["eigenvalue"] += rng.integers(-16, 17, x.shape) * EPS * max(1.0, np.abs(x["eigenvalue"]).max())
        elif x.dtype.kind == "f":
            x += rng.integers(-64, 65, x.shape) * EPS * max(1.0, np.abs(x).max())
    if "basis" in out.arrays:
        m = out["basis"].shape[1]
        rotation = np.linalg.qr(rng.standard_normal((m, m)))[0]
        out.arrays["basis"] = out["basis"] @ rotation  # B R: the same V, another orthonormal basis
        assert np.abs(out["basis"] - data["basis"]).max() > 1e-3
    if "aliasing_cost" in out.attrs:
        out.attrs["aliasing_cost"] *= 1 + 8 * EPS
    checks = json.loads(out.attrs["checks"])
    for c in checks:
        c["error"] = c["error"] * 3 + (c["tolerance"] > 0) * 1e-16
        c["detail"] = c["detail"].replace("e-1", "e-2")  # the measured numbers inside it, other
    out.attrs["checks"] = json.dumps(checks)
    out.attrs.update(checksum="sha256:" + "0" * 64, numpy_version="2.3.0", h5py_version="3.14.0")
    return out


@pytest.mark.parametrize("spec", [str(s) for s in catalog.shipped_specs()])
def test_differences_ignore_rounding_and_see_every_drift(spec: str) -> None:
    shipped = read_operator(catalog.shipped_path(spec))
    rng = np.random.default_rng(0)
    same = _rounded(shipped, rng)
    assert catalog.differences(same, shipped) == catalog.differences(shipped, same) == []

    def differs(change, *, named: str, alone: bool = True) -> None:
        changed = _copy(same)
        change(changed)
        why = catalog.differences(changed, shipped)
        assert why and (all if alone else any)(named in line for line in why), (named, why)

    for name, x in shipped.arrays.items():  # an entry moved by 1e-9 (or 100x a tolerance) is drift
        if x.dtype.kind == "f" and x.ndim:
            index = np.unravel_index(int(np.argmax(np.abs(x))), x.shape)
            limit, scaled = catalog.FLOAT_TOLERANCES.get(name.split("/")[-1], (1e-12, True))
            for delta in (1e-9, 100 * limit * (max(1.0, np.abs(x).max()) if scaled else 1.0)):
                def move(d: OperatorData, name=name, index=index, delta=delta) -> None:
                    d.arrays[name][index] += delta
                differs(move, named=f"dataset {name}")
        elif x.dtype.kind in "iuO" and len(x) > 1:  # two entries swapped
            i, j = (0, 1) if x.ndim == 1 else ((0, 0), (1, 0))
            if x[i] != x[j]:
                def swap(d: OperatorData, name=name, i=i, j=j) -> None:
                    d.arrays[name][i], d.arrays[name][j] = d.arrays[name][j], d.arrays[name][i]
                differs(swap, named=f"dataset {name}")
    differs(lambda d: d.attrs.update(format_version=3), named="attribute format_version")
    differs(lambda d: d.attrs.update(extra="new"), named="attribute extra")
    checks = json.loads(shipped.attrs["checks"])
    differs(lambda d: d.attrs.update(checks=json.dumps(checks[1:])), named="attribute checks")
    flipped = [{**checks[0], "passed": False}] + checks[1:]
    differs(lambda d: d.attrs.update(checks=json.dumps(flipped)), named="attribute checks")
    bad = [{**c, "error": c["error"] + 2 * c["tolerance"] + 1e-300} for c in checks]
    differs(lambda d: d.attrs.update(checks=json.dumps(bad)), named="attribute checks")
    if shipped.kind == "grid":
        differs(lambda d: d.attrs.update(construction="fft/1"), named="attribute construction")
        return
    # the discrete attributes, the band table and the subgroup's elements in H's order
    differs(lambda d: d.attrs.update(selection=d.attrs["selection"] + " "), named="attribute selection")
    differs(lambda d: d.attrs.update(subgroup_identity=d.attrs["subgroup_identity"] + 1),
            named="attribute subgroup_identity")
    differs(lambda d: d.attrs.update(solver_band_tol=1e-6), named="attribute solver_band_tol")
    differs(lambda d: d.attrs.update(aliasing_cost=d.attrs["aliasing_cost"] * (1 + 1e-9) + 1e-9),
            named="attribute aliasing_cost")
    if shipped.attrs["rate"] > 1:
        differs(lambda d: d.arrays["bands"].__setitem__("kept", np.roll(d["bands"]["kept"], 1)), named="dataset bands")

    def swap_nodes(d: OperatorData) -> None:  # nodes 0 and 1 swapped, with D's rows and U's columns: H relabelled
        order = np.arange(len(d["subgroup_nodes"]))
        order[[0, 1]] = order[[1, 0]]
        d.arrays.update(subgroup_nodes=d["subgroup_nodes"][order], downsample=d["downsample"][order],
                        upsample=d["upsample"][:, order])
    differs(swap_nodes, named="dataset subgroup_nodes", alone=False)
    differs(lambda d: d.arrays["bands"]["eigenvalue"].__iadd__(1e-9), named="dataset bands")
    b = same["basis"]  # a vector of B moved out of V (the basis is compared as B B^T)
    moved = np.linalg.qr(b + 1e-9 * rng.standard_normal(b.shape))[0]
    differs(lambda d: d.arrays.update(basis=moved), named="dataset basis")
