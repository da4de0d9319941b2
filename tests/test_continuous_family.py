"""The continuous groups as an operator family: registry dispatch, the file kind read by ``read_operator``,
and the CLI round trips (``build``, ``inspect``, ``eval``, ``subgroups``) through the common pipeline.

Facts asserted come from DESIGN §9 and docs/continuous.md, not from the code's output: SO(2) -> C8 at
L = 5 keeps 1 + 2 + 2 + 2 + 1 + 0 (the cosine at the Nyquist frequency 4, nothing above), sampling SO(3) at L = 2 on O's
24 rotations has rank 23, SO(2) -> C8 at L = 2 has |H| = 8 > dim = 5 (nothing to anti-alias).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gscli.cli import main
from gscli.errors import FormatError, SpecError
from gscli.families import CONTINUOUS, FAMILIES, FINITE, GRID, family_of, parse_spec
from gscli.fileformat import read_operator, write_operator
from gscli.specs import ContinuousOperatorSpec, GridOperatorSpec, OperatorSpec, parse_operator_spec
from gscli.store import named_operator, operator_path


def run(*args: str):
    return CliRunner().invoke(main, list(args))


# ------------------------------------------------------------------------------------------------
# The registry (no escnn needed)


def test_registry_dispatches_continuous_specs_and_files():
    spec = parse_spec("SO3_L3>O")
    assert isinstance(spec, ContinuousOperatorSpec) and family_of(spec) is CONTINUOUS
    assert family_of("continuous") is CONTINUOUS and CONTINUOUS in FAMILIES
    assert parse_spec("SO2_L5-C8") == ContinuousOperatorSpec.parse("SO2_L5>C8")  # the file-name form
    # the other families keep their specs
    assert family_of(parse_spec("D12>D6")) is FINITE and isinstance(parse_spec("D12>D6"), OperatorSpec)
    assert family_of(parse_spec("Z28x28>Z20x20")) is GRID and isinstance(parse_spec("Z28>Z20"), GridOperatorSpec)
    # negative control: the finite family's grammar does not read a continuous spec, so dispatch needs the family
    with pytest.raises(SpecError):
        FINITE.parse("SO3_L3>O")
    assert CONTINUOUS.parse("D12>D6") is None and CONTINUOUS.parse("Z28>Z20") is None


def test_store_names_and_the_public_spec_parser_know_continuous_specs(tmp_path: Path):
    spec = ContinuousOperatorSpec.parse("SO3_L3>O")
    assert operator_path(spec, tmp_path) == tmp_path / "SO3_L3-O.h5"
    assert named_operator(tmp_path / "SO3_L3-O.h5") == spec and named_operator(tmp_path / "so3_L3-O.h5") is None
    assert parse_operator_spec("O2_L4>D6") == ContinuousOperatorSpec.parse("O2_L4>D6")
    assert spec.escnn_subgroup_id == ("octa",)
    assert ContinuousOperatorSpec.parse("O2_L4>D6").escnn_subgroup_id == (0.0, 6)  # DESIGN §9: o2.subgroup((0., N))


# ------------------------------------------------------------------------------------------------
# With escnn: built operators

escnn = pytest.importorskip("escnn")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store with SO2_L5>C8 (anti-aliasing) and SO2_L2>C8 (|H| > dim), built through the CLI."""
    folder = tmp_path_factory.mktemp("store")
    for spec in ("SO2_L5>C8", "SO2_L2>C8"):
        r = run("build", spec, "--out", str(folder), "--json")
        assert r.exit_code == 0, r.output
    return folder


@pytest.fixture(scope="module")
def o2(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("o2")
    r = run("build", "O2_L4>D6", "--out", str(folder))
    assert r.exit_code == 0, r.output
    return folder / "O2_L4-D6.h5"


def test_build_writes_the_file_through_the_pipeline(tmp_path: Path):
    r = run("build", "SO2_L5>C8", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    (entry,) = json.loads(r.stdout)["operators"]
    assert entry["kind"] == "continuous" and entry["status"] == "built" and entry["mode"] == "antialias"
    assert [b["kept"] for b in entry["bands"]] == [1, 2, 2, 2, 1, 0]
    assert [p.name for p in tmp_path.iterdir()] == ["SO2_L5-C8.h5"]  # no temporaries, no lock files
    again = json.loads(run("build", "SO2_L5-C8", "--out", str(tmp_path), "--json").stdout)["operators"][0]
    assert again["status"] == "up-to-date" and again["checksum"] == entry["checksum"]
    forced = json.loads(run("build", "SO2_L5>C8", "--out", str(tmp_path), "--json", "--force").stdout)["operators"][0]
    assert forced["status"] == "rebuilt"


def test_read_operator_reads_the_kind(store: Path):
    from gscli.continuous import build_continuous, read_continuous

    data = read_operator(store / "SO2_L5-C8.h5", expect="SO2_L5>C8")
    assert data.kind == "continuous" and data.verified and data.spec == ContinuousOperatorSpec.parse("SO2_L5>C8")
    op = build_continuous("SO2_L5>C8")
    for name, array in op.arrays.items():
        assert np.array_equal(np.asarray(data[name]), np.asarray(array)), name
    assert list(data["bands/kept"]) == [1, 2, 2, 2, 1, 0] and list(data["bands/casimir"]) == [0, 1, 4, 9, 16, 25]
    back = read_continuous(store / "SO2_L5-C8.h5")  # the thin wrapper: the same arrays, as an operator
    assert back.mode == "antialias" and back.subgroup_id == 8 and all(c.passed for c in back.recheck())
    with pytest.raises(FormatError, match="holds the SO2_L5>C8 operator, not the SO2_L5>C7"):
        read_operator(store / "SO2_L5-C8.h5", expect="SO2_L5>C7")


def _rewrite(source: Path, target: Path, arrays: dict | None = None, attrs: dict | None = None) -> None:
    """Write ``source``'s operator to ``target`` with some arrays or attributes replaced (a valid container)."""
    data = read_operator(source)
    keep = {k: v for k, v in data.attrs.items() if k not in ("format", "format_version", "numpy_version",
                                                             "h5py_version", "checksum")}
    write_operator(target, {**data.arrays, **(arrays or {})}, {**keep, **(attrs or {})})


@pytest.mark.parametrize("change, message", [
    ({"attrs": {"mode": "no-antialias"}}, "mode"),                       # |H| = 8 <= dim = 11
    ({"attrs": {"escnn_subgroup_id": "[4]"}}, "escnn_subgroup_id"),      # another subgroup of SO(2)
    ({"arrays": {"bands/kept": np.array([1, 2, 2, 2, 2, 0])}}, "band table"),  # 9 kept, |H| = 8
    ({"arrays": {"bands/casimir": np.array([0.0, 4.0, 1.0, 9.0, 16.0, 25.0])}}, "band table"),  # not by Casimir
    ({"arrays": {"bands/irrep": np.array(["[0]", "oops", "[2]", "[3]", "[4]", "[5]"], dtype=object)}}, "irrep"),
    ({"arrays": {"basis": np.zeros((11, 7))}}, "basis"),
    ({"arrays": {"subgroup_cayley": np.full((8, 8), 8)}}, "subgroup_cayley"),
])
def test_the_kind_validator_refuses_inconsistent_files(store: Path, tmp_path: Path, change: dict, message: str):
    """write_operator reads the file back: an inconsistent continuous file is never written."""
    with pytest.raises(FormatError, match=message):
        _rewrite(store / "SO2_L5-C8.h5", tmp_path / "bad.h5", **change)
    assert not (tmp_path / "bad.h5").exists()
    _rewrite(store / "SO2_L5-C8.h5", tmp_path / "good.h5")  # control: unchanged, it is written
    assert read_operator(tmp_path / "good.h5").kind == "continuous"


def test_inspect_shows_bands_subgroup_and_mode(store: Path, tmp_path: Path):
    r = run("inspect", str(store / "SO2_L5-C8.h5"), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["kind"] == "continuous" and doc["subgroup"] == "C8" and doc["escnn_subgroup_id"] == 8
    assert [(b["casimir"], b["dimension"], b["kept"]) for b in doc["bands"]] == [
        (0.0, 1, 1), (1.0, 2, 2), (4.0, 2, 2), (9.0, 2, 2), (16.0, 2, 1), (25.0, 2, 0)]
    assert doc["mode"] == "antialias" and "no anti-aliasing" not in doc["mode_text"]
    text = run("inspect", str(store / "SO2_L5-C8.h5"))
    assert text.exit_code == 0 and "Casimir" in text.output and "escnn id 8" in text.output
    nothing = run("inspect", str(store / "SO2_L2-C8.h5"))
    assert nothing.exit_code == 0 and "no anti-aliasing needed (|H| >= dim)" in nothing.output
    png = tmp_path / "so2.png"
    plotted = run("inspect", str(store / "SO2_L5-C8.h5"), "--plot", str(png), "--json")
    assert plotted.exit_code == 0 and json.loads(plotted.stdout)["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_eval_remeasures_every_check(store: Path, o2: Path):
    r = run("eval", str(store / "SO2_L5-C8.h5"), "--json")
    assert r.exit_code == 0, r.output
    (report,) = json.loads(r.stdout)["files"]
    names = {c["name"] for c in report["checks"]}
    assert {"downsample_equivariance", "upsample_equivariance", "projector_commutes", "sampling_inverts_upsample",
            "lowpass_closed_form", "sampling_matches_escnn", "subgroup_matches_escnn"} <= names
    assert report["passed"] and report["kind"] == "continuous"
    catalog = run("eval", "--catalog", "--out", str(store), "--json")
    assert catalog.exit_code == 0, catalog.output
    assert [f["operator"] for f in json.loads(catalog.stdout)["files"]] == ["SO2_L2>C8", "SO2_L5>C8"]
    nothing = json.loads(run("eval", str(store / "SO2_L2-C8.h5"), "--json").stdout)["files"][0]
    assert "upsample_inverts_sampling" in {c["name"] for c in nothing["checks"]}
    assert any("no anti-aliasing needed (|H| >= dim)" in n for n in nothing["notes"])
    assert run("eval", str(o2)).exit_code == 0


def test_eval_catalog_of_a_mixed_store(store: Path, tmp_path: Path):
    """A store holding a finite-group file and a continuous-group file: each evaluated by its family."""
    import shutil

    from gscli.catalog import FOLDER

    shutil.copy(FOLDER / "C8-C4.h5", tmp_path / "C8-C4.h5")
    shutil.copy(store / "SO2_L5-C8.h5", tmp_path / "SO2_L5-C8.h5")
    r = run("eval", "--catalog", "--out", str(tmp_path), "--no-signals", "--json")
    assert r.exit_code == 0, r.output
    files = {f["operator"]: f for f in json.loads(r.stdout)["files"]}
    assert files["C8>C4"]["kind"] == "group" and files["SO2_L5>C8"]["kind"] == "continuous"
    assert "lowpass_closed_form" in {c["name"] for c in files["SO2_L5>C8"]["checks"]}
    # a continuous file under another operator's store name is refused, as for every kind
    shutil.copy(store / "SO2_L5-C8.h5", tmp_path / "SO2_L5-C7.h5")
    bad = run("eval", "--catalog", "--out", str(tmp_path), "--no-signals")
    assert bad.exit_code == 1 and "not the SO2_L5>C7" in bad.output


def test_eval_does_not_trust_the_stored_checks(store: Path, tmp_path: Path):
    """A file that reads (valid container, consistent shapes) but holds a wrong D fails eval with exit 1."""
    source = store / "SO2_L5-C8.h5"
    d = read_operator(source)["downsample"].copy()
    d[0, 3] += 1e-9  # breaks equivariance far above 1e-12; the stored checks still say "passed"
    _rewrite(source, tmp_path / "SO2_L5-C8.h5", arrays={"downsample": d})
    r = run("eval", str(tmp_path / "SO2_L5-C8.h5"))
    assert r.exit_code == 1 and "downsample_equivariance" in r.output


def test_eval_compares_h_with_escnn(o2: Path, tmp_path: Path):
    """H's elements relabelled consistently: every numpy check passes, only the comparison with escnn sees it."""
    data = read_operator(o2)
    a = data.arrays
    m = a["sampling"].shape[0]
    perm = np.roll(np.arange(m), 1)  # new element i is old element perm[i]
    inverse = np.argsort(perm)
    arrays = {"sampling": a["sampling"][perm], "downsample": a["downsample"][perm], "upsample": a["upsample"][:, perm],
              "irrep_images": a["irrep_images"][perm], "element_matrices": a["element_matrices"][perm],
              "element_names": a["element_names"][perm],
              "subgroup_cayley": inverse[a["subgroup_cayley"][np.ix_(perm, perm)]]}
    _rewrite(o2, tmp_path / "O2_L4-D6.h5", arrays=arrays,
             attrs={"subgroup_identity": int(inverse[data.attrs["subgroup_identity"]])})
    r = run("eval", str(tmp_path / "O2_L4-D6.h5"), "--json")
    assert r.exit_code == 1
    checks = {c["name"]: c["passed"] for c in json.loads(r.stdout)["files"][0]["checks"]}
    assert checks["subgroup_matches_escnn"] is False and checks["sampling_matches_escnn"] is False
    numpy_only = {k: v for k, v in checks.items() if k not in ("subgroup_matches_escnn", "sampling_matches_escnn")}
    assert all(numpy_only.values()), numpy_only


def test_eval_without_escnn_skips_its_checks_with_a_note(store: Path, monkeypatch):
    import gscli.families.continuous._eval as ev

    monkeypatch.setattr(ev, "escnn_available", lambda: False)
    r = run("eval", str(store / "SO2_L5-C8.h5"), "--json")
    assert r.exit_code == 0, r.output
    (report,) = json.loads(r.stdout)["files"]
    names = {c["name"] for c in report["checks"]}
    assert "sampling_matches_escnn" not in names and "lowpass_closed_form" in names
    assert any("skipped sampling_matches_escnn" in n and "escnn is not installed" in n for n in report["notes"])


def test_a_damaged_file_exits_1_through_every_command(store: Path, tmp_path: Path):
    image = bytearray((store / "SO2_L5-C8.h5").read_bytes())
    image[-100] ^= 0xFF
    folder = tmp_path / "s"
    folder.mkdir()
    bad = folder / "SO2_L5-C8.h5"
    bad.write_bytes(bytes(image))
    for args in (["inspect", str(bad)], ["eval", str(bad)], ["eval", "--catalog", "--out", str(folder)],
                 ["build", "SO2_L5>C8", "--out", str(folder)]):
        r = run(*args)
        assert r.exit_code == 1 and "damaged" in r.output, (args, r.output)
        assert bad.read_bytes() == bytes(image)  # nothing replaced it
    doc = json.loads(run("inspect", str(bad), "--json").stdout)
    assert doc["error"]["exit_code"] == 1 and "damaged" in doc["error"]["message"]
    assert run("build", "SO2_L5>C8", "--out", str(folder), "--force").exit_code == 0  # --force replaces it
    assert read_operator(bad).kind == "continuous"


@pytest.mark.parametrize("args, message", [
    (["SO2_L5>D4"], "D4 is not a subgroup of SO(2)"),
    (["SO3_L-1>O"], "negative"),
    (["SO3_L2.5>O"], "not an integer"),
    (["SU2_L3>O"], "unknown continuous group family 'SU2'"),
    (["SO3_L100>O"], "GiB"),
    (["SO3_L2>O"], "rank 23"),  # DESIGN §9: the samples on O are dependent at L = 2
    (["SO3_L3"], "GROUP>SUBGROUP"),
    (["SO3_L3>O", "--rate", "2"], "--rate and --subgroup are for group operators"),
    (["SO3_L3>O", "--subgroup", "O"], "--rate and --subgroup are for group operators"),
    (["SO3_L3>O", "--generators", "r"], "--generators"),
])
def test_a_bad_spec_exits_2_and_writes_nothing(tmp_path: Path, args: list, message: str):
    r = run("build", *args, "--out", str(tmp_path))
    assert r.exit_code == 2 and message in r.output, r.output
    assert list(tmp_path.iterdir()) == []


def test_subgroups_lists_finite_subgroups_and_the_rank_refusal():
    r = run("subgroups", "SO3_L2", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["subgroup"]: row for row in json.loads(r.stdout)["subgroups"]}
    assert rows["O"]["order"] == 24 and rows["I"]["order"] == 60 and rows["D3"]["order"] == 6
    assert rows["O"]["rank"] == 23 and rows["O"]["mode"] == "rank-deficient" and rows["O"]["smallest_L"] == 3
    assert rows["I"]["mode"] == "no-antialias"  # |I| = 60 > dim = 35
    text = run("subgroups", "SO3_L2")
    assert text.exit_code == 0 and "L = 2 cannot be sampled on O at full rank" in text.output
    assert run("subgroups", "D12").exit_code == 0  # finite groups keep their listing
