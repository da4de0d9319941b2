"""gscli inspect: the summary library, the plots and the command line, on operators built in a temporary store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gscli.build import build
from gscli.cli import main
from gscli.errors import FormatError
from gscli.fileformat import OperatorData, read_operator, write_operator
from gscli.inspect import band_transfer, fourier_response, summarize


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inspect-store")
    for group, sub in (("C8", "C4"), ("C9", "C3"), ("C16", "C4"), ("D8", "D4"), ("O", "T")):
        build(group, subgroup=sub, out=folder)
    return folder


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------------------------------------- library


def test_cyclic_elements_follow_escnn_embedding(store: Path) -> None:
    # C4 inside C8: r -> r^2 (escnn's subgroup of rotations by multiples of 90 degrees).
    s = summarize(store / "C8-C4.h5")
    assert [(e["h"], e["g"], e["name_in_h"], e["name"]) for e in s["elements"]] == [
        (0, 0, "e", "e"), (1, 2, "r", "r^2"), (2, 4, "r^2", "r^4"), (3, 6, "r^3", "r^6")]
    assert (s["operator"], s["group"], s["subgroup"], s["rate"], s["group_order"], s["subgroup_order"]) == (
        "C8>C4", "C8", "C4", 2, 8, 4)


def test_dihedral_elements_are_an_embedding(store: Path) -> None:
    # D4 inside D8: r^k -> r^(2k) and r^k s -> r^(2k + a) s for one fixed reflection axis a.
    elements = summarize(store / "D8-D4.h5")["elements"]
    assert [e["name_in_h"] for e in elements] == ["e", "r", "r^2", "r^3", "s", "r s", "r^2 s", "r^3 s"]
    assert [e["g"] for e in elements[:4]] == [0, 2, 4, 6]
    a = elements[4]["g"] - 8
    assert [e["g"] for e in elements[4:]] == [8 + (2 * k + a) % 8 for k in range(4)]


def test_point_group_elements_are_named_by_rotation(store: Path) -> None:
    s = summarize(store / "O-T.h5")
    names = [e["name"] for e in s["elements"]]
    assert len(names) == 12 and names.count("e") == 1
    # T holds the identity, 8 rotations by 120/240 degrees about body diagonals, 3 half turns about the axes.
    assert sum("about (1,1,1)" in n or "about (1,1,-1)" in n or "about (1,-1,1)" in n or "about (1,-1,-1)" in n
               for n in names) == 8
    assert sorted(n for n in names if n.startswith("180°")) == [
        "180° about (0,0,1)", "180° about (0,1,0)", "180° about (1,0,0)"]


def test_cyclic_band_table_is_the_cycle_graph_spectrum(store: Path) -> None:
    # The Laplacian of the 8-cycle has eigenvalues 2 - 2 cos(2 pi k / 8), k = 0..4, of dimension 1, 2, 2, 2, 1.
    # Sampling on C4 keeps |k| < 2 and the cosine at the Nyquist frequency k = 2.
    bands = summarize(store / "C8-C4.h5")["bands"]
    k = np.arange(5)
    np.testing.assert_allclose([b["frequency"] for b in bands], 2 - 2 * np.cos(2 * np.pi * k / 8), atol=1e-12)
    assert [b["dimension"] for b in bands] == [1, 2, 2, 2, 1]
    assert [b["kept"] for b in bands] == [1, 2, 1, 0, 0]
    assert [b["kept_fraction"] for b in bands] == [1.0, 1.0, 0.5, 0.0, 0.0]
    # plain subsampling folds k = 3 onto k = 1 and k = 4 onto k = 0; the sine at k = 2 vanishes on C4
    np.testing.assert_allclose([b["folded_plain"] for b in bands], [0, 0, 0, 1, 1], atol=1e-12)
    np.testing.assert_allclose([b["folded_operator"] for b in bands], 0, atol=1e-20)


def test_conditioning_of_cyclic_sampling(store: Path) -> None:
    # Orthonormal Fourier modes on 8 points sampled on every other point have norm 1/sqrt(2); the
    # Nyquist cosine cos(pi x / 2) / 2 samples to +-1/2 on 4 points: norm 1.
    c = summarize(store / "C8-C4.h5")["conditioning"]
    assert c["sampling_sigma_min"] == pytest.approx(2**-0.5, abs=1e-12)
    assert c["sampling_sigma_max"] == pytest.approx(1.0, abs=1e-12)
    assert c["upsample_norm"] == pytest.approx(2**0.5, abs=1e-12)


@pytest.mark.parametrize("stem", ["C8-C4", "D8-D4", "O-T"])
def test_upsample_norm_is_inverse_sigma_min(store: Path, stem: str) -> None:
    c = summarize(store / f"{stem}.h5")["conditioning"]
    assert c["upsample_norm"] * c["sampling_sigma_min"] == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("stem", ["C8-C4", "C9-C3", "C16-C4"])
def test_cyclic_response_is_the_ideal_low_pass(store: Path, stem: str) -> None:
    r = fourier_response(read_operator(store / f"{stem}.h5"))
    n, m = (int(x[1:]) for x in stem.split("-"))
    k = np.arange(-(n // 2), n - n // 2)
    expected = np.where(np.abs(k) < m / 2, 1.0, 0.0)
    if m % 2 == 0:
        expected[np.abs(k) == m // 2] = 0.5  # cosine kept, sine dropped
    np.testing.assert_array_equal(r["frequency"], k)
    np.testing.assert_allclose(r["gain"], expected, atol=1e-12)
    np.testing.assert_array_equal(r["ideal"], expected)


@pytest.mark.parametrize("stem", ["C8-C4", "D8-D4", "O-T"])
def test_band_transfer(store: Path, stem: str) -> None:
    data = read_operator(store / f"{stem}.h5")
    t = band_transfer(data)
    kept = np.array([int(b["kept"]) for b in data["bands"]])
    dims = t["dimensions"]
    np.testing.assert_array_equal(dims, data["bands"]["dimension"])
    # with the operator the round trip is P: no energy changes band, each keeps its kept fraction
    np.testing.assert_allclose(t["operator"], np.diag(kept / dims), atol=1e-12)
    # plain subsampling + U: a band inside V comes back whole; energy is conserved by neither in general,
    # but every band V does not keep must go somewhere or vanish, and some band must fold (aliasing)
    full = kept == dims
    np.testing.assert_allclose(t["plain"][:, full], np.eye(len(dims))[:, full], atol=1e-12)
    off_diagonal = t["plain"] - np.diag(np.diag(t["plain"]))
    assert off_diagonal.max() > 0.1


def test_damaged_file_is_refused_never_shown_as_verified(store: Path, tmp_path: Path) -> None:
    """A byte changed behind the header's back: refused before HDF5 parses it, by the library and the CLI."""
    path = tmp_path / "C8-C4.h5"
    path.write_bytes((store / "C8-C4.h5").read_bytes())
    with h5py.File(path, "r+") as f:  # h5py rewrites the array but not the whole-file digest
        f["antialias"][0, 0] += 1e-3
    with pytest.raises(FormatError, match="damaged: the file's sha256 is"):
        summarize(path)
    png = tmp_path / "damaged.png"
    for extra in ([], ["--plot", str(png)]):
        code, out, err = _run("inspect", str(path), *extra)
        assert code == 1 and out == "", (extra, out)
        assert err.startswith("Error: ") and err.count("\n") == 1 and f"{path}: damaged: the file's sha256" in err
        assert "verified" not in out + err
    assert not png.exists()
    code, out, _ = _run("inspect", str(path), "--json")  # one JSON document: the error, no summary
    assert code == 1 and "verified" not in out and "checksum" not in json.loads(out)
    assert f"{path}: damaged: the file's sha256" in json.loads(out)["error"]["message"]


def test_checksum_status_says_verified_only_for_verified_reads(store: Path, tmp_path: Path) -> None:
    verified = read_operator(store / "C8-C4.h5")
    assert verified.verified and summarize(verified)["checksum"]["status"] == "verified"
    assert summarize(store / "C8-C4.h5")["checksum"]["status"] == "verified"
    # the same arrays without the whole-file digest checked: matching, but not verified
    unverified = OperatorData(dict(verified.arrays), dict(verified.attrs), verified.path)
    assert not unverified.verified and summarize(unverified)["checksum"]["status"] == "unverified"
    assert summarize(read_operator(store / "C8-C4.h5", verify=False))["checksum"]["status"] == "unverified"
    changed = OperatorData({**verified.arrays, "antialias": verified["antialias"] + 1e-3}, dict(verified.attrs))
    s = summarize(changed)
    assert s["checksum"]["status"] == "mismatch" and s["checksum"]["stored"] != s["checksum"]["computed"]


def test_hostile_strings_in_a_valid_file_print_as_literal_text(store: Path, tmp_path: Path) -> None:
    """Escape sequences and rich markup in attributes and element names never reach the terminal as such."""
    data = read_operator(store / "C8-C4.h5")
    osc = "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07"
    attrs = {k: v for k, v in data.attrs.items() if k not in ("format", "format_version", "checksum")}
    attrs["selection"] = f"{osc} [red]alarm[/red] [link=http://evil.example]here[/link] \x1b[2J\x9b31m\u202eevil"
    attrs["subgroup_source"] = "[bold]bold?[/bold]\r\x08"
    names = data["group_element_names"].copy()
    names[2] = "\x1b[31mr^2[/]"
    path = tmp_path / "C8-C4.h5"
    write_operator(path, {**data.arrays, "group_element_names": names}, attrs)
    code, out, err = _run("inspect", str(path))
    assert code == 0, err
    for control in ("\x1b", "\x07", "\x9b", "\u202e", "\r", "\x08"):
        assert control not in out, repr(control)
    flat = " ".join(out.replace("│", " ").split())  # long cells wrap inside the panel
    assert "\\x1b]8;;http://evil.example\\x07click" in flat and "\\x1b[2J\\x9b31m\\u202eevil" in flat
    assert "[red]alarm[/red] [link=http://evil.example]here[/link]" in flat  # markup shown, not applied
    assert "[bold]bold?[/bold]\\r\\x08" in flat
    assert "\\x1b[31mr^2[/]" in flat
    # the same through a terminal that renders colour: only gscli's own styling is sent as escapes
    result = CliRunner().invoke(main, ["inspect", str(path)], color=True, env={"FORCE_COLOR": "1", "TERM": "xterm"})
    sgr = re.compile(r"\x1b\[[0-9;]*m")
    assert result.exit_code == 0 and sgr.search(result.stdout), "control: colour output is on"
    coloured = sgr.sub("", result.stdout)
    assert "\x1b" not in coloured and "\x07" not in coloured
    assert "[red]alarm[/red] [link=http://evil.example]here[/link]" in " ".join(coloured.replace("│", " ").split())
    # element names label the heat maps when all are short: "$\\q{$" is not valid mathtext, shown as written
    short = data["group_element_names"].copy()
    short[1], short[2] = "$\\q{$", "a\x1bb"
    write_operator(tmp_path / "C8-C4-short.h5", {**data.arrays, "group_element_names": short}, attrs)
    png = tmp_path / "hostile.png"
    code, _, err = _run("inspect", str(tmp_path / "C8-C4-short.h5"), "--plot", str(png))
    assert code == 0 and png.stat().st_size > 0, err
    # JSON keeps the exact strings, escaped by the JSON encoder
    code, out, _ = _run("inspect", str(path), "--json")
    assert code == 0 and "\x1b" not in out and json.loads(out)["provenance"]["selection"] == attrs["selection"]


# ---------------------------------------------------------------------------------------------- command line


def test_cli_inspect_terminal(store: Path) -> None:
    code, out, err = _run("inspect", str(store / "D8-D4.h5"))
    assert code == 0, err
    assert "D8>D4: D8 (|G| = 16) -> D4 (|H| = 8), rate 2" in out
    assert "elements of D4 inside D8" in out
    assert "Laplacian bands" in out
    assert "verified" in out and "MISMATCH" not in out
    for field in ("reconstruction", "aliasing cost", "generators", "selection", "solver", "versions", "checksum",
                  "stored checks"):
        assert field in out
    assert "||U||_2 = 1.41421" in out


def test_cli_inspect_json(store: Path) -> None:
    code, out, err = _run("inspect", str(store / "O-T.h5"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) >= {"file", "operator", "group", "subgroup", "rate", "elements", "bands", "aliasing_cost",
                        "conditioning", "provenance", "checksum", "stored_checks"}
    assert (doc["operator"], doc["rate"], len(doc["elements"])) == ("O>T", 2, 12)
    assert sum(b["kept"] for b in doc["bands"]) == 12
    assert sum(b["dimension"] for b in doc["bands"]) == 24
    assert doc["checksum"]["status"] == "verified"
    assert doc["provenance"]["solver"].startswith("spectral-bands")


def test_cli_inspect_plot(store: Path, tmp_path: Path) -> None:
    from matplotlib import image

    out_png = tmp_path / "c8.png"
    code, out, err = _run("inspect", str(store / "C8-C4.h5"), "--plot", str(out_png), "--json")
    assert code == 0, err
    assert json.loads(out)["plot"] == str(out_png)
    pixels = image.imread(out_png)
    assert pixels.shape[:2] == (960, 1600)
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.1  # not blank
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 100  # heat maps, not just text and lines


@pytest.mark.parametrize("stem", ["D8-D4", "O-T"])
def test_plot_non_cyclic(store: Path, tmp_path: Path, stem: str) -> None:
    from matplotlib import image

    from gscli.plots import plot_operator

    path = plot_operator(store / f"{stem}.h5", tmp_path / f"{stem}.png")
    pixels = image.imread(path)
    assert pixels.shape[:2] == (960, 1600) and pixels[..., :3].std() > 0.1


def test_cli_inspect_errors(store: Path, tmp_path: Path) -> None:
    code, _, err = _run("inspect", str(tmp_path / "missing.h5"))
    assert code == 1 and "missing.h5: no such operator file" in err
    # a bad --plot value is a usage error (2), in inspect as in eval-model (one rule, docs/cli.md)
    code, _, err = _run("inspect", str(store / "C8-C4.h5"), "--plot", str(tmp_path / "no" / "x.png"))
    assert code == 2 and "folder" in err and "does not exist" in err
    code, _, err = _run("inspect", str(store / "C8-C4.h5"), "--plot", str(tmp_path / "x.jpg"))
    assert code == 2 and "must end in .png" in err
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.attrs["format"] = "something-else"
    code, _, err = _run("inspect", str(foreign))
    assert code == 1 and "not a gscli operator file" in err


def test_commands_are_documented() -> None:
    code, out, _ = _run("--help")
    assert code == 0 and "inspect" in out and "eval" in out
    for command in ("inspect", "eval"):
        code, out, _ = _run(command, "--help")
        assert code == 0 and "Examples:" in out


def test_grid_operator_files_are_verified_and_printed_literally(tmp_path: Path) -> None:
    """The same rules for a grid operator (gscli.scale): damaged -> one line; file strings are literal text."""
    from gscli.build import build_spec as build_grid

    path = build_grid("Z12>Z8", out=tmp_path).path
    code, out, err = _run("inspect", str(path))
    assert code == 0 and "verified" in out, err
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    damaged = tmp_path / "damaged" / path.name
    damaged.parent.mkdir()
    damaged.write_bytes(bytes(raw))
    for extra in ([], ["--plot", str(tmp_path / "z.png")]):
        code, out, err = _run("inspect", str(damaged), *extra)
        assert code == 1 and out == "" and err.count("\n") == 1 and "damaged: the file's sha256" in err
    assert not (tmp_path / "z.png").exists()

    data = read_operator(path)
    attrs = {k: v for k, v in data.attrs.items() if k not in ("format", "format_version", "checksum")}
    attrs["construction"] = "\x1b]8;;http://evil.example\x07[red]x[/red]\x1b[2J"
    checks = json.loads(attrs["checks"])
    checks[0]["name"], checks[0]["error"] = "[link=http://evil.example]c[/link]\x1b[5m", "not a number"
    attrs["checks"] = json.dumps(checks)
    hostile = tmp_path / "hostile" / path.name
    hostile.parent.mkdir()
    write_operator(hostile, data.arrays, attrs)
    code, out, err = _run("inspect", str(hostile))
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    flat = " ".join(out.replace("│", " ").split())
    assert "\\x1b]8;;http://evil.example\\x07[red]x[/red]\\x1b[2J" in flat
    assert "[link=http://evil.example]c[/link]\\x1b[5m" in flat
