"""Conventions every command shares (docs/cli.md): exit codes, one JSON document, store folders,
Ctrl-C, unwritable caches and disks, and messages that say what is wrong.

Each test drives the real command line (click's CliRunner, or a subprocess where a fresh process or a
real signal is the point) and asserts the exit status, the one ``Error:`` line and ``json.loads`` of
stdout.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

import pytest
from click.testing import CliRunner

from gscli import _escnn
from gscli.build import build
from gscli.cli import main
from gscli.errors import StoreError, SubgroupError
from gscli.fileformat import read_operator
from gscli.store import STORE_ENV

ROOT = Path(__file__).resolve().parents[1]
P4 = {"name": "p4", "group": "C4", "image_size": 17, "stages": [
    {"name": "lift", "channels": 3, "kernel_size": 5},
    {"name": "b1", "channels": 4, "stride": 2, "rate": 2},
    {"name": "b2", "channels": 4, "stride": 2}]}


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def one_error_line(result) -> str:
    """The stderr of a failed command: exactly one ``Error: ...`` line (after click's usage lines)."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return errors[0]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != STORE_ENV}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def d12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding D12>D6, built with --subgroup (its stored reason names only type D6)."""
    folder = tmp_path_factory.mktemp("d12")
    build("D12", subgroup="D6", out=folder)
    return folder


# ------------------------------------------------------------------------------------------
# --json: one document on stdout, on errors too
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, code, kind, message", [
    (["build", "D12", "--rate", "5"], 2, "SubgroupError", "rate 5 does not divide |D12| = 24"),
    (["build", "C8", "--rate", "0"], 2, "UsageError", "0 is not in the range x>=1"),
    (["build", "D12"], 2, "UsageError", "give --rate R or --subgroup TYPE for D12"),
    (["build", "C8", "--rate", "2", "--out", "{tmp}/missing"], 1, "StoreError", "store folder"),
    (["subgroups", "Z3"], 2, "SpecError", "unknown group 'Z3'"),
    (["inspect", "{tmp}/missing.h5"], 1, "FormatError", "missing.h5: no such operator file"),
    (["eval"], 2, "UsageError", "give one or more operator FILEs"),
    (["eval", "--catalog", "--out", "{tmp}/missing"], 1, "StoreError", "does not exist"),
    (["eval", "x.h5", "--seed", "-5"], 2, "UsageError", "-5 is not in the range 0<=x<=4294967295"),
    (["eval-model", "{tmp}/p4.json", "--store", "{tmp}/missing", "--images", "2"], 1, "StoreError", "does not exist"),
    (["no-such-command"], 2, "UsageError", "No such command 'no-such-command'"),
])
def test_every_command_prints_one_json_document_on_errors(tmp_path: Path, args: list[str], code: int, kind: str,
                                                          message: str) -> None:
    (tmp_path / "p4.json").write_text(json.dumps(P4))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = run(*args, "--json")
    assert r.exit_code == code, r.output
    line = one_error_line(r)
    document = json.loads(r.stdout)  # the whole of stdout is one JSON document
    assert document == {"error": {"type": kind, "message": document["error"]["message"], "exit_code": code}}
    assert message in document["error"]["message"] and message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p4.json"]  # nothing written, no folder created


def test_a_result_document_is_not_followed_by_an_error_document(tmp_path: Path) -> None:
    """eval prints its report, then fails: still one document, the report."""
    r = run("eval", str(tmp_path / "missing.h5"), "--json")
    assert r.exit_code == 1
    document = json.loads(r.stdout)
    assert document["passed"] is False and "no such operator file" in document["files"][0]["error"]


def test_without_json_stdout_stays_empty_on_errors(tmp_path: Path) -> None:
    r = run("build", "D12", "--rate", "5", "--out", str(tmp_path))
    assert r.exit_code == 2 and r.stdout == ""


# ------------------------------------------------------------------------------------------
# store folders: one rule; store problems exit 1; empty values
# ------------------------------------------------------------------------------------------


def test_store_at_a_file_is_a_failure_for_every_command(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for args in (["build", "C8", "--rate", "2"], ["eval", "--catalog"]):
        r = run(*args, env={STORE_ENV: str(a_file)})
        assert r.exit_code == 1, r.output
        assert one_error_line(r) == f"Error: store {str(a_file)!r} is not a folder; choose a folder (--out, $GSCLI_STORE)"
    assert a_file.read_text() == ""


def test_empty_out_is_a_usage_error_and_empty_environment_means_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = run("build", "C4", "--subgroup", "C2", "--out", "")
    assert r.exit_code == 2
    assert "Invalid value for '--out'" in one_error_line(r) and "empty" in one_error_line(r)
    assert list(tmp_path.iterdir()) == []  # not the current folder
    r = run("build", "C4", "--subgroup", "C2", "--json", env={STORE_ENV: ""})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["operators"][0]["file"] == os.path.join("operators", "C4-C2.h5")
    r = run("eval", "--catalog", "--out", "")
    assert r.exit_code == 2 and "empty" in one_error_line(r)


def test_only_the_default_store_is_created_by_every_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI, from_catalog and eval-model follow one rule: operators/ is created, a named folder must exist."""
    from gscli.nn import GroupDownsample

    missing = tmp_path / "typo"
    with pytest.raises(StoreError, match=f"store folder '{missing}' does not exist"):
        GroupDownsample.from_catalog("C4-C2", store=missing)
    with pytest.raises(StoreError, match="empty path"):
        GroupDownsample.from_catalog("C4-C2", store="")
    (tmp_path / "p4.json").write_text(json.dumps(P4))
    r = run("eval-model", str(tmp_path / "p4.json"), "--store", str(missing), "--images", "2")
    assert r.exit_code == 1 and f"store folder '{missing}' does not exist" in one_error_line(r)
    assert not missing.exists()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORE_ENV, raising=False)
    with pytest.warns(UserWarning, match="was missing: built C4>C2"):
        layer = GroupDownsample.from_catalog("C4-C2")
    assert (tmp_path / "operators" / "C4-C2.h5").is_file() and str(layer.spec) == "C4>C2"


def test_a_failed_build_leaves_no_empty_operators_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import h5py

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORE_ENV, raising=False)
    r = run("build", "D12", "--rate", "5")  # refused request
    assert r.exit_code == 2 and list(tmp_path.iterdir()) == []
    real = h5py.Group.create_dataset

    def interrupt(self, name, *args, **kwargs):
        if name == "antialias":
            raise KeyboardInterrupt
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", interrupt)  # interrupted during the write
    r = run("build", "C8", "--rate", "2")
    assert r.exit_code == 130 and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORE_ENV, raising=False)
    r = run("build", "C8", "--rate", "2")  # and a good build creates it
    assert r.exit_code == 0 and [p.name for p in (tmp_path / "operators").iterdir()] == ["C8-C4.h5"]


# ------------------------------------------------------------------------------------------
# unwritable places: one line, not a traceback
# ------------------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_out_proc_is_one_line(tmp_path: Path) -> None:
    r = run("build", "C8", "--rate", "2", "--out", "/proc", "--json")
    assert r.exit_code == 1
    line = one_error_line(r)
    assert line.startswith("Error: cannot create files in the store folder '/proc' (")
    assert json.loads(r.stdout)["error"]["type"] == "StoreError"


def test_a_folder_in_the_way_is_refused_even_with_force(tmp_path: Path) -> None:
    (tmp_path / "C8-C4.h5").mkdir()
    (tmp_path / "C8-C4.h5" / "keep").write_text("mine")
    for extra in ([], ["--force"]):
        r = run("build", "C8", "--subgroup", "C4", "--out", str(tmp_path), *extra)
        assert r.exit_code == 1, r.output
        assert one_error_line(r) == (f"Error: {str(tmp_path / 'C8-C4.h5')!r} is in the way: it is not a file (a folder?); "
                                     "remove or rename it, or choose another --out (--force replaces files only)")
    assert (tmp_path / "C8-C4.h5" / "keep").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C8-C4.h5"]


def test_a_full_disk_is_one_line_and_keeps_the_old_file(d12: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from the write of the file's bytes (the same OSError a full disk gives)."""
    import gscli.fileformat as ff

    (tmp_path / "D12-D6.h5").write_bytes((d12 / "D12-D6.h5").read_bytes())
    before = (tmp_path / "D12-D6.h5").stat()

    class FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(bytes(data)[:100])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full_open(path, mode="r", *args, **kwargs):
        fh = open(path, mode, *args, **kwargs)
        return FullDisk(fh) if "x" in mode or "w" in mode else fh

    monkeypatch.setattr(ff, "open", full_open, raising=False)
    r = run("build", "D12", "--subgroup", "D6", "--out", str(tmp_path), "--force", "--json")
    assert r.exit_code == 1, r.output
    assert one_error_line(r) == (f"Error: cannot write {str(tmp_path / 'D12-D6.h5')!r}: No space left on device; "
                                 "nothing was replaced")
    assert json.loads(r.stdout)["error"]["type"] == "StoreError"
    after = (tmp_path / "D12-D6.h5").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D12-D6.h5"]  # no temporary left
    read_operator(tmp_path / "D12-D6.h5")


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real 64 kB tmpfs, where mounting is allowed (root in a container); else the simulation above stands."""
    point = tmp_path / "tiny"
    point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; test_a_full_disk_is_one_line_and_keeps_the_old_file covers ENOSPC")
    yield point
    subprocess.run(["umount", str(point)], check=False)


def test_a_really_full_disk_in_a_real_process(tiny_disk: Path) -> None:
    """HDF5 writing into a full file system used to crash the process (segmentation fault)."""
    proc = subprocess.run([sys.executable, "-m", "gscli", "build", "C128", "--subgroup", "C64", "--out", str(tiny_disk),
                           "--json"], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"Error: cannot write {str(tiny_disk / 'C128-C64.h5')!r}: No space left on device; nothing was replaced")
    assert "Traceback" not in proc.stderr and json.loads(proc.stdout)["error"]["exit_code"] == 1
    assert list(tiny_disk.iterdir()) == []


@pytest.mark.parametrize("seed", ["-5", "99999999999999999999"])
def test_seeds_out_of_range_are_usage_errors(tmp_path: Path, seed: str) -> None:
    r = run("eval", str(tmp_path / "x.h5"), "--seed", seed)
    assert r.exit_code == 2
    assert one_error_line(r) == f"Error: Invalid value for '--seed': {seed} is not in the range 0<=x<=4294967295."
    (tmp_path / "p4.json").write_text(json.dumps(P4))
    r = run("eval-model", str(tmp_path / "p4.json"), "--seed", seed)
    assert r.exit_code == 2 and "is not in the range 0<=x<=4294967295" in one_error_line(r)


# ------------------------------------------------------------------------------------------
# escnn's cache: an unwritable one falls back to a temporary cache, announced in one line
# ------------------------------------------------------------------------------------------


def test_unwritable_cache_folders_fall_back_to_a_temporary_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("GSCLI_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(a_file))  # a HOME nothing can be created in
    cases = {"HOME": _escnn.cache_dir() / "escnn"}
    monkeypatch.setenv("GSCLI_CACHE_DIR", str(a_file))  # GSCLI_CACHE_DIR naming a file
    cases["GSCLI_CACHE_DIR=file"] = _escnn.cache_dir() / "escnn"
    for name, location in cases.items():
        used = _escnn._usable_cache(location)
        err = capsys.readouterr().err
        assert used is not None and used != str(location) and Path(used).is_dir(), name
        assert os.path.dirname(used) == tempfile.gettempdir() and "gscli-escnn-" in used
        assert err == (f"gscli: escnn's cache folder {str(location)!r} is not writable (Not a directory); using a "
                       f"temporary cache in {used} for this run (set GSCLI_CACHE_DIR to a writable folder to keep "
                       "the cache)\n"), name
    assert a_file.read_text() == ""


def test_a_read_only_cache_file_system_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    """A read-only file system: the folder exists, creating a file in it fails with EROFS (root included)."""
    location = tmp_path / "cache" / "escnn"
    location.mkdir(parents=True)
    real = tempfile.TemporaryFile

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == location:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    used = _escnn._usable_cache(location)
    assert used is not None and used != str(location)
    assert "is not writable (Read-only file system); using a temporary cache" in capsys.readouterr().err
    monkeypatch.setattr(tempfile, "mkdtemp", lambda **kw: (_ for _ in ()).throw(OSError(errno.EROFS, "ro")))
    assert _escnn._usable_cache(location) is None  # no temporary folder either: no disk cache at all
    assert "running without a disk cache" in capsys.readouterr().err
    monkeypatch.undo()
    assert _escnn._usable_cache(location) == str(location) and capsys.readouterr().err == ""


_IMPORT_ESCNN = (  # what every build of a point group does first: import escnn with its cache redirected
    "from gscli import _escnn; from gscli.specs import GroupSpec; print(_escnn.escnn_group(GroupSpec.parse('C4')))"
)


@pytest.mark.parametrize("where, command", [
    ("GSCLI_CACHE_DIR", ["-c", _IMPORT_ESCNN]),
    ("HOME", ["-c", _IMPORT_ESCNN]),
    pytest.param("GSCLI_CACHE_DIR", ["-m", "gscli", "build", "O", "--subgroup", "T", "--json"], marks=pytest.mark.slow),
])
def test_a_real_process_with_an_unwritable_cache_works_and_prints_one_line(tmp_path: Path, where: str,
                                                                          command: list[str]) -> None:
    """escnn's joblib cache used to make its folder at import and die with a traceback."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    env = {k: v for k, v in _env().items() if k not in ("GSCLI_CACHE_DIR", "XDG_CACHE_HOME")}
    env[where] = str(a_file)
    (tmp_path / "ops").mkdir()
    proc = subprocess.run([sys.executable, *command, *(["--out", str(tmp_path / "ops")] if "-m" in command else [])],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    if "-m" in command:
        assert json.loads(proc.stdout)["operators"][0]["status"] == "built"
    else:
        assert proc.stdout.strip() == "C4"
    (line,) = proc.stderr.strip().splitlines()
    m = re.fullmatch(r"gscli: escnn's cache folder '.*' is not writable \(Not a directory\); using a temporary cache "
                     r"in (\S+) for this run \(set GSCLI_CACHE_DIR to a writable folder to keep the cache\)", line)
    assert m is not None, line
    assert not os.path.exists(m.group(1))  # removed at exit
    assert a_file.read_text() == ""


# ------------------------------------------------------------------------------------------
# Ctrl-C: never lost, exit 130, the old file or the complete new one
# ------------------------------------------------------------------------------------------


def test_an_interrupt_python_discards_still_stops_the_write(d12: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            request: pytest.FixtureRequest) -> None:
    """SIGINT handled inside a weakref callback (as h5py's object registry runs them during writes):
    Python prints "Exception ignored" and drops the KeyboardInterrupt. It used to be lost (exit 0, "rebuilt")."""
    import h5py

    # a test run started as a background job inherits SIGINT ignored; this test needs Python's default
    original = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, original))

    target = tmp_path / "D12-D6.h5"
    target.write_bytes((d12 / "D12-D6.h5").read_bytes())
    before = target.stat()
    real = h5py.Group.create_dataset

    class Registered:
        pass

    def ctrl_c_in_a_callback(self, name, *args, **kwargs):
        if name == "antialias":
            thing = Registered()
            ref = weakref.ref(thing, lambda _: signal.getsignal(signal.SIGINT)(signal.SIGINT, None))
            del thing  # runs the callback: the handler raises KeyboardInterrupt, Python discards it
            assert ref() is None
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", ctrl_c_in_a_callback)
    r = run("build", "D12", "--subgroup", "D6", "--out", str(tmp_path), "--force", "--json")
    assert r.exit_code == 130, r.output
    assert r.stderr.strip().splitlines()[-1] == "Error: interrupted; no partial file was written"
    assert json.loads(r.stdout) == {"error": {"type": "Interrupted", "exit_code": 130,
                                              "message": "interrupted; no partial file was written"}}
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # the old file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D12-D6.h5"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored


def test_read_only_commands_do_not_claim_files(d12: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gscli.cli.eval as cli_eval

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_eval, "evaluate_store", interrupted)
    r = run("eval", str(d12 / "D12-D6.h5"))
    assert r.exit_code == 130 and one_error_line(r) == "Error: interrupted"


_LOOP = """
import os, sys
from gscli.cli import main
folder, stop = sys.argv[1], sys.argv[2]
codes = os.fdopen(os.dup(1), "w")  # exit codes go here; the commands' tables go nowhere
sys.stdout = open(os.devnull, "w")
args = ["build", "C128", "--subgroup", "C64", "--out", folder, "--force"]
main.main(args, prog_name="gscli", standalone_mode=False)  # warm: escnn's tables are cached per process
print("ready", file=codes, flush=True)
while not os.path.exists(stop):
    try:
        try:
            main.main(args, prog_name="gscli")
        except SystemExit as exc:
            print(exc.code, file=codes, flush=True)
    except KeyboardInterrupt:
        print("outside", file=codes, flush=True)  # between two commands: not gscli's to handle
"""


def test_sigint_at_any_moment_of_build_force_exits_130_in_a_real_process(tmp_path: Path) -> None:
    """A real process rebuilds C128>C64 with --force in a loop; SIGINT arrives after 25 different delays.

    Every SIGINT must end its command with 130 (never a lost one: the command after it would be the
    first to report), and the file must verify at the end with no temporary left.
    """
    folder, stop = tmp_path / "ops", tmp_path / "stop"
    folder.mkdir()
    child = subprocess.Popen([sys.executable, "-c", _LOOP, str(folder), str(stop)], env=_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        codes = []
        for i in range(25):
            time.sleep(0.002 + 0.004 * i)
            child.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 30
            while True:  # commands that completed before the signal print 0; the interrupted one prints its code
                assert time.monotonic() < deadline, "a SIGINT was lost"
                line = child.stdout.readline().strip()
                if line != "0":
                    codes.append(line)
                    break
                assert len(codes) == i
            read_operator(folder / "C128-C64.h5")
        stop.touch()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # 1: click's own "Aborted!" for a SIGINT while it parses the command line, before gscli runs
    assert set(codes) <= {"130", "1", "outside"} and codes.count("130") >= 20, codes
    stderr = child.stderr.read() if child.stderr else ""
    assert "Traceback" not in stderr, stderr
    assert stderr.count("Error: interrupted; no partial file was written") == codes.count("130")
    assert stderr.count("Aborted!") == codes.count("1")
    assert [p.name for p in folder.iterdir()] == ["C128-C64.h5"]
    read_operator(folder / "C128-C64.h5")


# ------------------------------------------------------------------------------------------
# messages that say what is wrong
# ------------------------------------------------------------------------------------------


def test_an_over_large_n_names_the_limit(tmp_path: Path) -> None:
    r = run("build", "C99999999", "--rate", "2", "--out", str(tmp_path))
    assert r.exit_code == 2
    assert one_error_line(r) == ("Error: group 'C99999999': N is too large; gscli builds groups of at most 4096 "
                                 "elements (C4096, D2048)")


def test_a_rate_without_a_subgroup_lists_only_rates_that_have_one(tmp_path: Path) -> None:
    """I (the alternating group A5, 60 elements) has subgroups of orders 1, 2, 3, 4, 5, 6, 10, 12, 60 only:
    none of order 15, 20 or 30, so no rate 4, 3 or 2."""
    r = run("build", "I", "--rate", "7", "--out", str(tmp_path))
    assert r.exit_code == 2
    expected = sorted(60 // order for order in (1, 2, 3, 4, 5, 6, 10, 12, 60))
    assert one_error_line(r) == f"Error: rate 7 does not divide |I| = 60; allowed rates: {', '.join(map(str, expected))}"


def test_an_up_to_date_rate_build_gives_this_requests_reason(d12: Path) -> None:
    r = run("build", "D12", "--rate", "2", "--out", str(d12), "--json")
    assert r.exit_code == 0, r.output
    (entry,) = json.loads(r.stdout)["operators"]
    assert entry["status"] == "up-to-date" and entry["operator"] == "D12>D6"
    assert "of index 2 (types C12, D6)" in entry["selection"]  # the pool of --rate 2, not of --subgroup D6
    assert read_operator(d12 / "D12-D6.h5").attrs["selection"].endswith("of index 2 (type D6)")
    r = run("build", "D12", "--subgroup", "D6", "--out", str(d12), "--json")
    (entry,) = json.loads(r.stdout)["operators"]
    assert entry["selection"].startswith("up to date, kept as built: least aliasing")


def test_long_user_input_is_cut_in_messages(tmp_path: Path) -> None:
    for args in (["build", "D" * 5000, "--rate", "2"], ["build", "C8>" + "X" * 5000], ["subgroups", "C" + "8" * 5000],
                 ["build", "D12>D6", "--subgroup", "Q" * 5000], ["build", "O", "--subgroup", "T" * 5000],
                 ["build", "Z28>" + "Q" * 5000]):
        r = run(*args, "--out", str(tmp_path)) if args[0] == "build" else run(*args)
        assert r.exit_code == 2, r.output
        line = one_error_line(r)
        assert len(line) < 400 and ("(5000 characters)" in line or "(5001 characters)" in line), line


# ------------------------------------------------------------------------------------------
# --rate that contradicts the subgroup: refused on the up-to-date path as on a fresh build
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [3, 2.0, True, "2"])
def test_a_rate_that_contradicts_the_subgroup_is_refused_even_when_the_file_is_current(d12: Path, tmp_path: Path,
                                                                                      rate) -> None:
    with pytest.raises(SubgroupError) as fresh:
        build("D12", rate=rate, subgroup="D6", out=tmp_path)  # empty store: the fresh path
    with pytest.raises(SubgroupError) as current:
        build("D12", rate=rate, subgroup="D6", out=d12)  # D12-D6.h5 is up to date
    assert str(current.value) == str(fresh.value)
    assert list(tmp_path.iterdir()) == []
    r = run("build", "D12", "--subgroup", "D6", "--rate", "3", "--out", str(d12))
    assert r.exit_code == 2
    assert one_error_line(r).startswith("Error: subgroup D6 has index 2 in D12, not rate 3; available: ")
