"""The command line under stress: Ctrl-C while it starts, generator lists too long for a file name,
store names that promise another Cayley graph, one rule for --plot, messages naming the option the
user typed, warnings on one line, exit statuses of library errors, eval-model's tolerance."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from gscli.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def strict(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------------------------- Ctrl-C at start-up


def _interrupted_at(tmp_path: Path, delay: float, args: list[str]) -> subprocess.CompletedProcess:
    """Run gscli in a real process and send SIGINT ``delay`` seconds after it starts to load its command
    line (``gscli.cli``: click, rich, numpy, gscli's modules), so while they load, click parses, or the
    command runs. (A SIGINT inside Python's own start-up, its ``site`` module, is Python's to report.)"""
    marker = tmp_path / f"started-{delay}"
    (tmp_path / "sitecustomize.py").write_text(
        "import os, sys\n"
        "class Marker:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'gscli.cli':\n"
        "            sys.meta_path.remove(self)\n"
        "            open(os.environ['GSCLI_TEST_STARTED'], 'w').close()\n"
        "        return None\n"
        "sys.meta_path.insert(0, Marker())\n")
    env = {**os.environ, "GSCLI_TEST_STARTED": str(marker),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    script = Path(sys.executable).parent / "gscli"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gscli"]
    child = subprocess.Popen(command + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             cwd=tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=300)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


DELAYS = [0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.35, 0.6, 1.0]


def test_sigint_while_gscli_starts_exits_130_with_one_json_document(tmp_path: Path) -> None:
    codes = []
    for delay in DELAYS:
        r = _interrupted_at(tmp_path, delay, ["subgroups", "D12", "--json"])
        codes.append(r.returncode)
        assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, (delay, r.stderr)
        assert r.returncode in (0, 130), (delay, r.returncode, r.stderr)
        document = strict(r.stdout)  # exactly one JSON document, whatever the moment
        if r.returncode == 130:
            assert document == {"error": {"type": "Interrupted", "message": "interrupted", "exit_code": 130}}
            assert r.stderr.endswith("Error: interrupted\n")
    assert codes.count(130) >= len(DELAYS) // 2, codes


def test_sigint_while_gscli_starts_without_json_is_one_line(tmp_path: Path) -> None:
    for delay in (0.0, 0.05, 0.2):
        r = _interrupted_at(tmp_path, delay, ["subgroups", "D12"])
        assert "Traceback" not in r.stderr, (delay, r.stderr)
        if r.returncode == 130:
            assert r.stderr.strip().splitlines()[-1] == "Error: interrupted" and r.stdout == ""
        else:
            assert r.returncode == 0


def test_sigint_while_click_parses_is_interrupted_not_aborted(monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(click.Command, "parse_args", interrupted)  # the subcommand's parsing
    code, out, err = run("subgroups", "D12", "--json")
    assert code == 130 and strict(out)["error"]["type"] == "Interrupted" and "Error: interrupted" in err


# ------------------------------------------------------------------------------------- generator lists


def test_generator_suffix_keeps_short_names_and_digests_long_lists() -> None:
    from gscli.cayley import SUFFIX_LIMIT, generator_suffix

    assert generator_suffix((13, 1)) == "g1_13" and generator_suffix(None) == ""
    at_limit = list(range(10, 10 + (SUFFIX_LIMIT - 1) // 3))  # "g" + 33 two-digit indices and 32 "_": 100
    assert generator_suffix(at_limit) == "g" + "_".join(map(str, at_limit)) and len(generator_suffix(at_limit)) <= 100
    long = list(range(1, 120))
    assert generator_suffix(long) == "gh" + hashlib.sha256(",".join(map(str, long)).encode()).hexdigest()[:16]
    assert generator_suffix(reversed(long)) == generator_suffix(long + [5])


def test_a_long_generator_list_builds_under_a_digest_name_and_reads_back(tmp_path: Path) -> None:
    """D60 with every non-identity element as a generator: 368 characters of indices, beyond a file name's 255."""
    pytest.importorskip("escnn")
    generators = ",".join(str(i) for i in range(1, 120))
    code, out, err = run("build", "D60", "--subgroup", "D30", "--generators", generators, "--out", str(tmp_path), "--json")
    assert code == 0, err
    digest = hashlib.sha256(generators.encode()).hexdigest()[:16]
    path = Path(strict(out)["operators"][0]["file"])
    assert path.name == f"D60-D30_gh{digest}.h5" and path.exists()
    assert run("eval", str(path), "--no-signals")[0] == 0 and run("inspect", str(path), "--json")[0] == 0
    again = run("build", "D60", "--subgroup", "D30", "--generators", generators, "--out", str(tmp_path), "--json")
    assert again[0] == 0 and strict(again[1])["operators"][0]["status"] == "up-to-date"


# ------------------------------------------------------------------------------------- store names


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("escnn")
    folder = tmp_path_factory.mktemp("custom")
    code, out, err = run("build", "D12", "--subgroup", "D6", "--generators", "r,r s", "--out", str(folder), "--json")
    assert code == 0, err
    return Path(strict(out)["operators"][0]["file"])


def test_a_custom_generator_file_under_the_default_name_is_refused_by_every_command(custom: Path,
                                                                                    tmp_path: Path) -> None:
    assert custom.name.startswith("D12-D6_g") and run("eval", str(custom), "--no-signals")[0] == 0
    copy = tmp_path / "D12-D6.h5"
    shutil.copyfile(custom, copy)
    expected = f"its store name is {custom.name}"
    code, out, err = run("eval", str(copy), "--no-signals", "--json")
    assert code == 1 and expected in err and strict(out)["passed"] is False
    code, out, err = run("inspect", str(copy), "--json")
    assert code == 1 and expected in err and strict(out)["error"]["exit_code"] == 1
    code, _, err = run("build", "D12", "--subgroup", "D6", "--out", str(tmp_path))
    assert code == 1 and "not escnn's" in err  # build's rule, which eval and inspect now share
    mine = tmp_path / "my-copy.h5"  # a name that is no store name promises nothing
    shutil.copyfile(custom, mine)
    assert run("eval", str(mine), "--no-signals")[0] == 0 and run("inspect", str(mine))[0] == 0


def test_a_default_file_under_a_generator_name_is_refused(custom: Path, tmp_path: Path) -> None:
    default = Path(__file__).resolve().parent.parent / "gscli" / "catalog" / "D12-D6.h5"
    wrong = tmp_path / custom.name
    shutil.copyfile(default, wrong)
    code, _, err = run("eval", str(wrong), "--no-signals")
    assert code == 1 and "escnn's Cayley-graph generators; its store name is D12-D6.h5" in err


# ------------------------------------------------------------------------------------- messages


def test_from_catalog_explains_a_grid_name_as_from_file_does() -> None:
    from gscli.errors import FormatError
    from gscli.nn import GroupDownsample

    for name in ("Z28x28-Z20x20", "Z28x28>Z20x20"):
        with pytest.raises(FormatError, match=r"Z28x28>Z20x20 is a grid operator, not a group operator; "
                                              r"resample images with gscli.scale.resample"):
            GroupDownsample.from_catalog(name)
    shipped = ROOT / "gscli" / "catalog" / "Z28x28-Z20x20.h5"
    with pytest.raises(FormatError, match="not a group operator; resample images with gscli.scale.resample"):
        GroupDownsample.from_file(shipped)


@pytest.mark.parametrize("command", ["inspect", "eval-model"])
@pytest.mark.parametrize("bad", ["missing/x.png", "x.jpg"])
def test_a_bad_plot_path_is_a_usage_error_in_every_command(tmp_path: Path, command: str, bad: str) -> None:
    target = ROOT / "gscli" / "catalog" / "C8-C4.h5" if command == "inspect" else ROOT / "configs" / "p4-digits.toml"
    code, out, err = run(command, str(target), "--plot", str(tmp_path / bad), "--json")
    assert code == 2, err
    assert strict(out)["error"] == {"type": "UsageError", "message": strict(out)["error"]["message"], "exit_code": 2}
    assert ("does not exist" if "/" in bad else "must end in .png") in err
    assert err.count("Error:") == 1


def test_eval_model_store_errors_name_store(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    code, out, err = run("eval-model", str(ROOT / "configs" / "p4-digits.toml"), "--store", str(missing), "--json")
    assert code == 1 and "--store" in err and "--out" not in err
    assert "--store" in strict(out)["error"]["message"]
    afile = tmp_path / "afile"
    afile.write_text("")
    code, _, err = run("eval-model", str(ROOT / "configs" / "p4-digits.toml"), "--store", str(afile))
    assert code == 1 and "is not a folder" in err and "--store" in err and "--out" not in err


def test_eval_model_store_not_writable_names_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found when a missing operator is to be built into a store files cannot be created in."""
    pytest.importorskip("escnn")
    import gscli.store

    monkeypatch.setattr(gscli.store, "why_not_writable", lambda folder: "Read-only file system")
    config = tmp_path / "p4.json"
    config.write_text(json.dumps({"name": "p4", "group": "C4", "image_size": 9, "stages": [
        {"name": "lift", "channels": 2, "kernel_size": 3}, {"name": "b1", "channels": 2, "stride": 2, "rate": 2}]}))
    store = tmp_path / "store"
    store.mkdir()
    code, out, err = run("eval-model", str(config), "--store", str(store), "--images", "2", "--json")
    assert code == 1 and "Read-only file system" in err, err
    assert "(--store, $GSCLI_STORE)" in err and "--out" not in err and strict(out)["error"]["type"] == "StoreError"


def test_warnings_are_one_line_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OperatorBuiltWarning (eval-model building a missing operator) showed Python's source line."""
    from gscli.cli import eval as eval_cli
    from gscli.nn import OperatorBuiltWarning

    real = eval_cli.evaluate_store

    def warns(*args, **kwargs):
        warnings.warn("operator file x was missing: built C8>C4\nwith escnn", OperatorBuiltWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(eval_cli, "evaluate_store", warns)
    code, out, err = run("eval", str(ROOT / "gscli" / "catalog" / "C8-C4.h5"), "--no-signals", "--json")
    assert code == 0 and strict(out)["passed"]
    assert err == "Warning: operator file x was missing: built C8>C4 with escnn (OperatorBuiltWarning)\n"


def test_eval_model_building_operators_prints_warnings_on_one_line(tmp_path: Path) -> None:
    """A real process (pytest would record the warning instead of printing it): eval-model builds the
    missing C4>C2 into an empty store and says so on one line, without Python's source line."""
    pytest.importorskip("escnn")
    config = tmp_path / "p4.json"
    config.write_text(json.dumps({"name": "p4", "group": "C4", "image_size": 9, "stages": [
        {"name": "lift", "channels": 2, "kernel_size": 3}, {"name": "b1", "channels": 2, "stride": 2, "rate": 2}]}))
    store = tmp_path / "store"
    store.mkdir()
    r = subprocess.run([sys.executable, "-m", "gscli", "eval-model", str(config), "--store", str(store), "--images", "2",
                        "--variants", "antialiased", "--json"], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default"})
    assert r.returncode == 0, r.stderr
    strict(r.stdout)
    built = [line for line in r.stderr.splitlines() if "OperatorBuiltWarning" in line]
    assert built and all(line.startswith("Warning: operator file ") for line in built), r.stderr
    assert not [line for line in r.stderr.splitlines() if line.startswith(" ")], r.stderr  # no source lines


# ------------------------------------------------------------------------------------- exit statuses


@pytest.mark.parametrize(("error", "code"), [("InputError", 2), ("SpecError", 2), ("SizeError", 2),
                                             ("FormatError", 1), ("CheckError", 1), ("StoreError", 1)])
def test_library_errors_exit_with_their_documented_status(monkeypatch: pytest.MonkeyPatch, error: str,
                                                          code: int) -> None:
    """docs/cli.md: usage errors (InputError: a tensor of the wrong shape or type) 2, failures 1."""
    import gscli.errors
    from gscli.cli import eval as eval_cli

    def raises(*args, **kwargs):
        raise getattr(gscli.errors, error)("the message")

    monkeypatch.setattr(eval_cli, "evaluate_store", raises)
    exit_code, out, err = run("eval", str(ROOT / "gscli" / "catalog" / "C8-C4.h5"), "--json")
    assert exit_code == code
    assert strict(out) == {"error": {"type": error, "message": "the message", "exit_code": code}}
    assert err == "Error: the message\n"


def test_eval_model_fails_just_above_its_documented_tolerance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The help text promises logits invariant within 1e-4 (float32): a model whose logits move by 3e-4
    under every transform must fail, one that moves by 3e-5 must pass."""
    pytest.importorskip("escnn")
    import torch

    from gscli.models import _analysis

    config = tmp_path / "p4.json"
    config.write_text(json.dumps({"name": "p4", "group": "C4", "image_size": 9, "stages": [
        {"name": "lift", "channels": 2, "kernel_size": 3}, {"name": "b1", "channels": 2, "stride": 2, "rate": 2}]}))
    exact = _analysis._relative
    for shift, expected in ((3e-4, 1), (3e-5, 0)):
        def moved(a: torch.Tensor, b: torch.Tensor, shift: float = shift) -> float:
            return exact(a * (1 + shift), b)  # every measured output off by exactly `shift`, relative

        monkeypatch.setattr(_analysis, "_relative", moved)
        code, out, err = run("eval-model", str(config), "--store", str(tmp_path), "--images", "2",
                             "--variants", "antialiased", "--json")
        assert code == expected, (shift, err)
        variant = strict(out)["variants"][0]
        assert abs(variant["logits_invariance_in_final_group_max"] - shift) < 0.1 * shift
