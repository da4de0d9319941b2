"""``gscli build --generators``: the Cayley graph is a choice, validated, recorded and kept apart in the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gscli.build import build
from gscli.cli import main
from gscli.errors import StoreError, SubgroupError
from gscli.fileformat import read_operator
from gscli.groups import dihedral_table


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _laplacian(cayley: np.ndarray, generators: list[int]) -> np.ndarray:
    """Independent Cayley-graph Laplacian: x ~ x s and x ~ x s^-1 (inverse found by search)."""
    n = cayley.shape[0]
    adj = np.zeros((n, n))
    for s in generators:
        inv = int(np.nonzero(cayley[s] == 0)[0][0])
        for t in (s, inv):
            for x in range(n):
                y = cayley[x, t]
                if y != x:
                    adj[x, y] = adj[y, x] = 1.0
    return np.diag(adj.sum(1)) - adj


def test_round_trip_records_the_generators_and_keeps_files_apart(tmp_path: Path) -> None:
    r = run("build", "D12", "--rate", "2", "--generators", "r, r s", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    (entry,) = json.loads(r.stdout)["operators"]
    custom = tmp_path / "D12-D6_g1_13.h5"
    assert Path(entry["file"]) == custom and "Cayley-graph generators r, r s" in entry["selection"]
    data = read_operator(custom)
    assert data["group_generators"].tolist() == [1, 13] and data.attrs["cayley_generators"] == "r, r s"
    # The file's projector is graded by the chosen Laplacian (and not by escnn's r, s one).
    lap = _laplacian(dihedral_table(12), [1, 13])
    p = data["antialias"]
    assert np.abs(p @ lap - lap @ p).max() < 1e-10
    assert abs(np.trace(p @ lap) - data.attrs["aliasing_cost"]) < 1e-9

    # The default operator goes to the plain name; the custom file is untouched.
    before = custom.read_bytes()
    r = run("build", "D12", "--rate", "2", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    default = read_operator(tmp_path / "D12-D6.h5")
    assert default.attrs["cayley_generators"] == "escnn" and default["group_generators"].tolist() == [1, 12]
    assert custom.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D12-D6.h5", "D12-D6_g1_13.h5"]

    # inspect shows the choice
    r = run("inspect", str(custom), "--json")
    doc = json.loads(r.stdout)
    assert doc["generators"] == ["r", "r s"] and doc["cayley_generators"] == "r, r s"
    r = run("inspect", str(tmp_path / "D12-D6.h5"))
    assert "r, s (escnn's)" in r.stdout
    r = run("inspect", str(custom))
    assert "r, r s (chosen with --generators)" in r.stdout


def test_another_generator_set_changes_the_chosen_subgroup(tmp_path: Path) -> None:
    """D12 at rate 2: with r, s the least-aliasing D6 has the reflections r^odd s; with r, r s those r^even s."""
    lap_default = _laplacian(dihedral_table(12), [1, 12])
    lap_custom = _laplacian(dihedral_table(12), [1, 13])
    same_spectrum = np.allclose(np.linalg.eigvalsh(lap_default), np.linalg.eigvalsh(lap_custom))
    assert same_spectrum  # isomorphic graphs (s -> r s is an automorphism): same bands, other eigenspaces
    a = build("D12", 2, None, out=tmp_path)
    b = build("D12", 2, None, out=tmp_path, generators="r,r s")
    nodes_a = sorted(read_operator(a.path)["subgroup_nodes"].tolist())
    nodes_b = sorted(read_operator(b.path)["subgroup_nodes"].tolist())
    assert nodes_a == [0, 2, 4, 6, 8, 10, 13, 15, 17, 19, 21, 23]
    assert nodes_b == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]


def test_another_generator_changes_the_operator_to_an_independent_projector(tmp_path: Path) -> None:
    """C8 with generator r^3: frequency k sits at 2 - 2cos(2 pi 3k / 8), so C8 > C4 keeps k = 0, +-3, cos 2."""
    b = build("C8", 2, None, out=tmp_path, generators="r^3")
    assert b.path.name == "C8-C4_g3.h5"
    p = read_operator(b.path)["antialias"]
    x = np.arange(8)
    basis = np.stack([np.ones(8), np.cos(2 * np.pi * 3 * x / 8), np.sin(2 * np.pi * 3 * x / 8),
                      np.cos(2 * np.pi * 2 * x / 8)], axis=1)
    q, _ = np.linalg.qr(basis)
    assert np.abs(p - q @ q.T).max() < 1e-12
    default = read_operator(build("C8", 2, None, out=tmp_path).path)["antialias"]
    assert np.abs(default - p).max() > 0.1  # the default keeps k = +-1 instead
    r = run("eval", str(b.path), "--json")  # every guarantee re-measured from the file (no FFT low-pass for r^3)
    assert r.exit_code == 0, r.output
    names = [c["name"] for c in json.loads(r.stdout)["files"][0]["checks"]]
    assert "laplacian_grading" in names and "fft_lowpass" not in names


def test_escnns_own_set_is_the_default(tmp_path: Path) -> None:
    result = build("D4", None, "D2", out=tmp_path, generators=["s", 1])
    assert result.path.name == "D4-D2.h5"
    assert read_operator(result.path).attrs["cayley_generators"] == "escnn"


def test_a_default_build_does_not_take_a_custom_file_for_its_own(tmp_path: Path) -> None:
    custom = build("D4", None, "D2", out=tmp_path, generators="r,r s")
    shutil.copy(custom.path, tmp_path / "D4-D2.h5")  # a custom operator under the default name
    with pytest.raises(StoreError, match=r"built with Cayley-graph generators r, r s, not escnn's"):
        build("D4", None, "D2", out=tmp_path)
    assert build("D4", None, "D2", out=tmp_path, force=True).status == "rebuilt"


@pytest.mark.parametrize(("generators", "message"), [
    ("r^2,s", r"generators r\^2, s generate D6 \(12 of the 24 elements of D12\), not D12; "
              r"add an element outside it, e.g. 'r'"),
    ("r", r"generators r generate C12 \(12 of the 24 elements of D12\), not D12"),
    ("t", r"generator 't' is not an element of D12; give element names or indices 0..23"),
    ("24", r"generator index 24 is not an element of D12"),
])
def test_generators_that_do_not_generate_g_are_refused(tmp_path: Path, generators: str, message: str) -> None:
    r = CliRunner().invoke(main, ["build", "D12", "--rate", "2", "--generators", generators, "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and r.output.startswith("Error: ")
    import re

    assert re.search(message, r.output), r.output
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SubgroupError):
        build("D12", 2, None, out=tmp_path, generators=generators)


def test_point_group_generators_by_index_and_name(tmp_path: Path) -> None:
    from gscli._escnn import load_group
    from gscli.cayley import resolve_generators
    from gscli.specs import GroupSpec

    O = load_group(GroupSpec.parse("O"))
    names = [O.element_names[g] for g in O.generators]
    assert resolve_generators(O, ",".join(names)) is None  # names with commas inside parentheses parse
    with pytest.raises(SubgroupError, match=r"generate C4 \(4 of the 24 elements of O\)"):
        resolve_generators(O, names[0])


def test_generators_need_a_group() -> None:
    r = CliRunner().invoke(main, ["build", "--generators", "r"])
    assert r.exit_code == 2 and "--generators need a GROUP" in r.output


def test_grid_operators_take_no_generators(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["build", "Z8>Z4", "--generators", "r", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "grid operators (Z<N>) take none" in r.output
    assert list(tmp_path.iterdir()) == []
