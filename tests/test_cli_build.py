"""``gscli build`` and ``gscli subgroups`` through click's CliRunner: exit codes, messages, files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gscli.catalog import same_operator
from gscli.cli import main
from gscli.fileformat import read_operator


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_build_writes_a_verified_file_and_json(tmp_path: Path) -> None:
    r = run("build", "D12", "--subgroup", "D6", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout is JSON and nothing else
    (entry,) = doc["operators"]
    assert entry["operator"] == "D12>D6" and entry["status"] == "built" and entry["rate"] == 2
    assert all(c["passed"] for c in entry["checks"])
    path = tmp_path / "D12-D6.h5"
    assert Path(entry["file"]) == path
    data = read_operator(path)
    assert data.attrs["group"] == "D12" and data.attrs["subgroup"] == "D6" and data.attrs["rate"] == 2
    assert data["downsample"].shape == (12, 24) and data["upsample"].shape == (24, 12)
    assert data["antialias"].shape == (24, 24) and data["subgroup_nodes"].dtype == np.int64
    assert data.attrs["checksum"] == entry["checksum"]
    assert [p.name for p in tmp_path.iterdir()] == ["D12-D6.h5"]  # no temporaries, no lock files


def test_hdf5_round_trip_is_bit_exact(tmp_path: Path) -> None:
    from conftest import built

    op = built("O", "T")
    run("build", "O", "-s", "T", "--out", str(tmp_path))
    data = read_operator(tmp_path / "O-T.h5")
    for name, array in op.arrays().items():
        stored = data[name]
        if array.dtype == object:
            assert stored.tolist() == list(array)
        else:
            assert stored.tobytes() == np.ascontiguousarray(array, dtype=stored.dtype).tobytes(), name
            assert np.array_equal(stored, array)
    bands = data["bands"]
    assert [tuple(b) for b in bands] == [(b.eigenvalue, b.dimension, b.kept) for b in op.solution.bands]
    with h5py.File(tmp_path / "O-T.h5") as f:  # the required names, readable by any HDF5 tool
        for name in ("downsample", "upsample", "antialias", "subgroup_nodes", "bands"):
            assert name in f
        for key in ("format", "format_version", "group", "subgroup", "rate", "solver", "gscli_version",
                    "escnn_version", "numpy_version", "checksum"):
            assert key in f.attrs


def test_rate_alone_picks_the_least_aliasing_subgroup(tmp_path: Path) -> None:
    from gscli.build import candidates
    from gscli.specs import GroupSpec

    r = run("build", "D12", "--rate", "2", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0
    (entry,) = json.loads(r.stdout)["operators"]
    costs = {c.subgroup.type: c.cost for c in candidates(GroupSpec.parse("D12"), 12)}
    chosen = entry["operator"].split(">")[1]
    assert costs[chosen] == min(costs.values())
    assert "least aliasing" in entry["selection"]
    again = json.loads(run("build", "D12", "-r", "2", "--out", str(tmp_path), "--json").stdout)["operators"][0]
    assert again["operator"] == entry["operator"] and again["status"] == "up-to-date"


def test_up_to_date_files_are_kept_unless_forced(tmp_path: Path) -> None:
    assert run("build", "C8>C4", "--out", str(tmp_path)).exit_code == 0
    path = tmp_path / "C8-C4.h5"
    before = path.stat().st_mtime_ns
    r = run("build", "C8-C4", "--out", str(tmp_path), "--json")
    assert json.loads(r.stdout)["operators"][0]["status"] == "up-to-date"
    assert path.stat().st_mtime_ns == before
    r = run("build", "C8", "-s", "C4", "--out", str(tmp_path), "--force", "--json")
    assert json.loads(r.stdout)["operators"][0]["status"] == "rebuilt"


def test_a_different_existing_file_needs_force(tmp_path: Path) -> None:
    path = tmp_path / "C8-C4.h5"
    path.write_bytes(b"not an operator")
    r = run("build", "C8", "-s", "C4", "--out", str(tmp_path))
    assert r.exit_code == 1
    assert r.stderr.startswith(f"Error: {path} exists and is not an up-to-date C8>C4 operator (")
    assert r.stderr.strip().endswith("); pass --force to replace it") and len(r.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == b"not an operator"
    assert run("build", "C8", "-s", "C4", "--out", str(tmp_path), "--force").exit_code == 0
    read_operator(path)


def test_catalog_builds_every_listed_operator(tmp_path: Path) -> None:
    (tmp_path / "catalog.txt").write_text("# two operators\nC8>C4\n\nD6-D3   # dihedral\n")
    r = run("build", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    ops = json.loads(r.stdout)["operators"]
    assert [o["operator"] for o in ops] == ["C8>C4", "D6>D3"]
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["C8-C4.h5", "D6-D3.h5"]
    assert not list(tmp_path.glob(".*tmp*"))
    again = json.loads(run("build", "--out", str(tmp_path), "--json").stdout)["operators"]
    assert {o["status"] for o in again} == {"up-to-date"}


def test_shipped_catalog_lists_the_required_operators() -> None:
    from gscli.catalog import CATALOG, read_catalog

    specs = {str(s) for s in read_catalog(CATALOG)}
    required = {"C8>C4", "C16>C8", "C16>C4", "D8>D4", "D12>D6", "D12>C12", "D16>D8", "O>C4", "O>T", "Oh>O", "I>C5", "Ih>I"}
    assert required <= specs


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["build", "X9", "--rate", "2"], 2, "Error: unknown group 'X9'; allowed: C<N>, D<N> (N >= 1), O, Oh, I or Ih"),
        (["build", "C0", "--rate", "1"], 2, "Error: unknown group 'C0' (N must be a positive integer, family letter upper-case, e.g. 'C8'); allowed: C<N>, D<N> (N >= 1), O, Oh, I or Ih"),
        (["build", "D12", "--rate", "5"], 2, "Error: rate 5 does not divide |D12| = 24; allowed rates: 1, 2, 3, 4, 6, 8, 12, 24"),
        (["build", "C5000", "--rate", "2"], 2, "Error: group C5000 has 5000 elements; gscli builds groups of at most 4096 elements"),
        (["build", "D12", "--subgroup", "T"], 2, "Error: D12 has no subgroup of type T; available: R=1: D12; R=2: C12, D6;"),
        (["build", "D12", "--subgroup", "Ih"], 2, "Error: no subgroup of type Ih in D12: |Ih| = 120 does not divide |D12| = 24; available:"),
        (["build", "D12", "--subgroup", "D4", "--rate", "2"], 2, "Error: subgroup D4 has index 3 in D12, not rate 2; available: R=1: D12; R=2: C12, D6; R=3: D4;"),
        (["build", "O", "--subgroup", "C6"], 2, "Error: O has no subgroup of type C6; available:"),
        (["build", "D12"], 2, "Error: give --rate R or --subgroup TYPE for D12"),
        (["build", "D12", "--subgroup", "Q8"], 2, "Error: unknown subgroup type 'Q8'"),
        (["subgroups", "Z3"], 2, "Error: unknown group 'Z3'"),
    ],
)
def test_bad_input_gets_one_error_line_and_an_exit_code(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    r = run(*args, "--out", str(tmp_path)) if args[0] == "build" else run(*args)
    assert r.exit_code == code, r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(message), last
    assert r.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_rate_zero_is_a_usage_error(tmp_path: Path) -> None:
    r = run("build", "C8", "--rate", "0", "--out", str(tmp_path))
    assert r.exit_code == 2 and "0 is not in the range x>=1" in r.stderr


def test_missing_or_unwritable_output_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    r = run("build", "C8", "-r", "2", "--out", str(missing))
    assert r.exit_code == 1
    assert r.stderr.strip() == f"Error: store folder '{missing}' does not exist; create it or choose another (--out, $GSCLI_STORE)"
    assert not missing.exists()
    a_file = tmp_path / "file"
    a_file.write_text("")
    r = run("build", "C8", "-r", "2", "--out", str(a_file))
    assert r.exit_code != 0


def test_a_failed_check_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gscli.families.finite._build as b
    from gscli.solver import Solution

    real = b.assemble

    def broken(plan, *args):
        s = real(plan, *args)
        bad = s.antialias.copy()
        bad[0, 1] += 1e-6
        return Solution(s.nodes, s.basis, bad, bad[s.nodes], s.upsample, s.bands)

    monkeypatch.setattr(b, "assemble", broken)
    r = run("build", "C8", "-r", "2", "--out", str(tmp_path))
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: C8>C4: check failed, nothing written: projector_symmetric: FAILED (error 1e-06")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import h5py as h5

    real = h5.File.create_dataset

    def interrupt(self, name, *args, **kwargs):
        if name == "antialias":
            raise KeyboardInterrupt
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5.Group, "create_dataset", interrupt)
    r = run("build", "C8", "-r", "2", "--out", str(tmp_path))
    assert r.exit_code == 130
    assert r.stderr.strip() == "Error: interrupted; no partial file was written"
    assert list(tmp_path.iterdir()) == []


def test_subgroups_lists_rates_types_and_the_pick() -> None:
    r = run("subgroups", "O", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["group"] == "O" and doc["order"] == 24
    pairs = {(row["rate"], row["subgroup"]) for row in doc["subgroups"]}
    # O has T at R=2, D4 at R=3, D3 at R=4, C4 at R=6, C3 at R=8, C2 at R=12 (DESIGN §3)
    assert {(2, "T"), (3, "D4"), (4, "D3"), (6, "C4"), (8, "C3"), (12, "C2"), (1, "O"), (24, "C1")} <= pairs
    for rate in {row["rate"] for row in doc["subgroups"]}:
        rows = [row for row in doc["subgroups"] if row["rate"] == rate]
        picked = [row for row in rows if row["chosen_for_rate"]]
        assert len(picked) == 1 and picked[0]["aliasing_cost"] == min(row["aliasing_cost"] for row in rows)
    copies = {row["subgroup"]: row["copies"] for row in doc["subgroups"]}
    assert copies["C4"] == 3 and copies["C3"] == 4 and copies["D3"] == 4


def test_every_command_has_help() -> None:
    for name, command in main.commands.items():
        r = run(name, "--help")
        assert r.exit_code == 0 and command.help and "Usage:" in r.output


def test_module_entry_point() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "gscli", "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.strip().endswith("0.1.0")


def test_json_reports_every_band(tmp_path: Path) -> None:
    doc = json.loads(run("build", "C8", "-s", "C4", "--out", str(tmp_path), "--json").stdout)
    bands = doc["operators"][0]["bands"]
    # cycle graph C8: eigenvalues 2 - 2cos(2 pi k / 8); C4 keeps k = 0, +-1 and the cosine of k = 2
    expected = [(2 - 2 * np.cos(2 * np.pi * k / 8), dim) for k, dim in [(0, 1), (1, 2), (2, 2), (3, 2), (4, 1)]]
    assert [(round(b["eigenvalue"], 12), b["dimension"]) for b in bands] == [(round(e, 12), d) for e, d in expected]
    assert [b["kept"] for b in bands] == [1, 2, 1, 0, 0]
    again = json.loads(run("build", "C8", "-s", "C4", "--out", str(tmp_path), "--json").stdout)
    assert again["operators"][0]["bands"] == bands


def test_build_without_arguments_in_an_empty_folder_builds_the_shipped_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gscli.catalog import shipped_path, shipped_specs

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GSCLI_STORE", raising=False)
    store = tmp_path / "operators"
    store.mkdir()
    for spec in shipped_specs()[1:]:  # current copies are kept (no escnn, fast); the first is built
        shutil.copy(shipped_path(spec), store / f"{spec.stem}.h5")
    r = run("build", "--json")
    assert r.exit_code == 0, r.output
    ops = json.loads(r.stdout)["operators"]
    assert [o["operator"] for o in ops] == [str(s) for s in shipped_specs()]
    assert [o["status"] for o in ops] == ["built"] + ["up-to-date"] * (len(ops) - 1)
    first = shipped_specs()[0]
    assert same_operator(read_operator(store / f"{first.stem}.h5"), read_operator(shipped_path(first)))
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "catalog.txt").write_text("C6>C3\n")  # a store's own catalog.txt comes first
    r = run("build", "--out", "own", "--json")
    assert [o["operator"] for o in json.loads(r.stdout)["operators"]] == ["C6>C3"]
