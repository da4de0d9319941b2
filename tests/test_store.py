"""The operator store: integrity on load, safe loading, atomic writes, concurrency, store location.

Every malformed file below is *forged* consistently (sealed header, matching dataset checksum) with
one defect, so each test proves that the check it names exists on its own, not that some other
check happens to catch the damage. The header is sealed here by an independent implementation of
the documented layout (sha256 of every byte after the 512-byte user block).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from gscli.build import build, is_up_to_date
from gscli.cli import main
from gscli.errors import FormatError, SpecError
from gscli.fileformat import (
    FORMAT_VERSION,
    array_checksum,
    atomic_write,
    read_operator,
    remove_stale_temporaries,
    temporary_path,
    write_operator,
)
from gscli.specs import OperatorSpec
from gscli.store import STORE_ENV, default_store, lock_path, operator_path, write_lock

ROOT = Path(__file__).resolve().parents[1]
HEADER = 512


# ------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with small real operators: cyclic C8>C4, dihedral D12>D6, and C128>C64 (430 kB)."""
    folder = tmp_path_factory.mktemp("store")
    for group, sub in (("C8", "C4"), ("D12", "D6"), ("C128", "C64")):
        build(group, subgroup=sub, out=folder)
    return folder


@pytest.fixture(scope="session")
def real(store: Path) -> Any:
    return read_operator(store / "D12-D6.h5")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop(STORE_ENV, None)
    return env


def seal(path: Path, version: int = FORMAT_VERSION) -> None:
    """Write the documented header into the 512-byte user block of ``path``."""
    raw = path.read_bytes()
    body = raw[HEADER:]
    line = f"gscli-operator {version} sha256:{hashlib.sha256(body).hexdigest()} size:{len(body)}\n".encode()
    path.write_bytes(line.ljust(HEADER, b"\0") + body)


def forge(path: Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any], *, header_version: int | None = FORMAT_VERSION,
          checksum: bool = True) -> Path:
    """Write an operator-like HDF5 file directly with h5py, sealed (unless ``header_version`` is None)."""
    attrs = dict(attrs)
    if checksum:
        attrs["checksum"] = array_checksum(arrays)
    kwargs = {"userblock_size": HEADER} if header_version is not None else {}
    with h5py.File(path, "w", **kwargs) as f:
        for name, a in arrays.items():
            if a.dtype == object:
                f.create_dataset(name, data=[str(s) for s in a], dtype=h5py.string_dtype("utf-8"))
            else:
                f.create_dataset(name, data=a)
        for key, value in attrs.items():
            f.attrs[key] = value
    if header_version is not None:
        seal(path, header_version)
    return path


def parts(data: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return {k: v.copy() for k, v in data.arrays.items()}, dict(data.attrs)


def load_error(path: Path) -> str:
    with pytest.raises(FormatError) as info:
        read_operator(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":"), f"the error must name the file: {message}"
    return message


# ------------------------------------------------------------------------------------------
# the writer and the documented layout
# ------------------------------------------------------------------------------------------


def test_header_is_the_documented_sha256_of_the_hdf5_part(store: Path) -> None:
    raw = (store / "C8-C4.h5").read_bytes()
    line, _, padding = raw[:HEADER].partition(b"\n")
    assert set(padding) == {0}
    m = re.fullmatch(rb"gscli-operator (\d+) sha256:([0-9a-f]{64}) size:(\d+)", line)
    assert m is not None, line
    assert int(m.group(1)) == FORMAT_VERSION
    assert m.group(2).decode() == hashlib.sha256(raw[HEADER:]).hexdigest()
    assert int(m.group(3)) == len(raw) - HEADER
    with h5py.File(store / "C8-C4.h5", "r") as f:  # still a standard HDF5 file
        assert f.userblock_size == HEADER
        assert f["downsample"].shape == (4, 8)


def test_written_arrays_read_back_bit_for_bit(store: Path, tmp_path: Path, real: Any) -> None:
    arrays, attrs = parts(real)
    rng = np.random.default_rng(0)
    arrays["downsample"] = rng.standard_normal(arrays["downsample"].shape)
    out = tmp_path / "D12-D6.h5"
    write_operator(out, arrays, attrs)
    back = read_operator(out)
    for name, a in arrays.items():
        assert back[name].dtype == (a.dtype if a.dtype != object else object)
        assert np.array_equal(back[name], a), name
    assert back.attrs["selection"] == attrs["selection"]
    assert back.spec == OperatorSpec.parse("D12>D6")


@pytest.mark.parametrize("change, message", [
    (lambda a, t: a.pop("basis"), "missing datasets basis"),
    (lambda a, t: a.__setitem__("extra", np.zeros(3)), "unknown datasets ['extra']"),
    (lambda a, t: t.__setitem__("rate", "2"), "attribute 'rate' = '2': it must be of type int"),
    (lambda a, t: t.__setitem__("selection", [1, 2]), "attributes are str, int or float"),
    (lambda a, t: t.pop("solver"), "missing attributes solver"),
])
def test_writer_refuses_incomplete_operators(tmp_path: Path, real: Any, change: Any, message: str) -> None:
    arrays, attrs = parts(real)
    change(arrays, attrs)
    with pytest.raises(FormatError, match=re.escape(message)):
        write_operator(tmp_path / "x.h5", arrays, attrs)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# integrity on load: every kind of bad file is a FormatError naming the file and the problem
# ------------------------------------------------------------------------------------------


def test_missing_file_folder_and_special_files(tmp_path: Path) -> None:
    assert "no such operator file" in load_error(tmp_path / "none.h5")
    assert "is a folder" in load_error(tmp_path)
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    assert "not a regular file" in load_error(fifo)  # and it does not wait for a writer
    assert "not a regular file" in load_error(Path("/dev/zero"))


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"hello, not an operator\n" * 40, "not a gscli operator file (it starts with b'hello, not an op', not 'gscli-operator')"),
    (b"\x89PNG\r\n\x1a\n" + bytes(600), "not a gscli operator file"),
    (b"gscli-operator 2 sha256:" + b"0" * 64 + b" size:0\n", "truncated"),
    (b"gscli-operator 2 sha256:nothex size:1\n".ljust(HEADER, b"\0"), "damaged header"),
    (b"gscli-operator 2 sha256:" + b"0" * 64 + b" size:0\nX".ljust(HEADER, b"\0"), "damaged header"),
])
def test_not_an_operator_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.h5"
    path.write_bytes(content)
    assert message in load_error(path)


def test_plain_hdf5_and_format_1_files_are_refused(tmp_path: Path, real: Any) -> None:
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    assert "an HDF5 file without a gscli header" in load_error(plain)
    arrays, attrs = parts(real)
    old = forge(tmp_path / "old.h5", arrays, {**attrs, "format_version": 1}, header_version=None)
    assert "older gscli (format 1); rebuild it with: gscli build --force" in load_error(old)


@pytest.mark.parametrize("where", ["header", "attribute"])
def test_newer_format_version_says_upgrade(tmp_path: Path, real: Any, where: str) -> None:
    arrays, attrs = parts(real)
    if where == "header":
        path = forge(tmp_path / "new.h5", arrays, {**attrs, "format_version": 3}, header_version=3)
    else:
        path = forge(tmp_path / "new.h5", arrays, {**attrs, "format_version": 3})
    message = load_error(path)
    assert f"format_version 3 is newer than this gscli reads ({FORMAT_VERSION}); upgrade gscli" in message


@pytest.mark.parametrize("keep", [0, 100, HEADER - 1, HEADER, HEADER + 1, 5000, -1])
def test_truncated_file(tmp_path: Path, store: Path, keep: int) -> None:
    raw = (store / "D12-D6.h5").read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(raw[:keep])
    message = load_error(path)
    assert "truncated" in message or "empty file" in message


def test_trailing_bytes(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "long.h5"
    path.write_bytes((store / "D12-D6.h5").read_bytes() + b"\0")
    assert "has trailing bytes" in load_error(path)


@pytest.mark.parametrize("dataset", ["downsample", "upsample", "antialias", "subgroup_nodes", "bands", "group_cayley"])
def test_flipped_bit_in_a_dataset_is_detected(tmp_path: Path, store: Path, dataset: str) -> None:
    source = store / "D12-D6.h5"
    with h5py.File(source, "r") as f:
        offset = f[dataset].id.get_offset()  # absolute offset of the raw data in the file
        nbytes = f[dataset].id.get_storage_size()
    raw = bytearray(source.read_bytes())
    raw[offset + nbytes // 2] ^= 0x01
    path = tmp_path / "flip.h5"
    path.write_bytes(bytes(raw))
    assert "damaged: the file's sha256 is" in load_error(path)
    # The unverified reader sees different numbers: the damage is real, only the checksum catches it.
    with h5py.File(path, "r") as f, h5py.File(source, "r") as g:
        assert not np.array_equal(f[dataset][()], g[dataset][()])


def test_edited_array_with_a_valid_header_fails_the_dataset_checksum(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "edited.h5"
    path.write_bytes((store / "D12-D6.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        f["downsample"][0, 0] += 1e-9
    seal(path)
    assert "checksum mismatch: the arrays were changed or damaged" in load_error(path)


def _with(arrays: dict, attrs: dict, **changes: Any) -> tuple[dict, dict]:
    arrays, attrs = dict(arrays), dict(attrs)
    for key, value in changes.items():
        target = arrays if key in arrays or isinstance(value, np.ndarray) else attrs
        if value is None:
            target.pop(key)
        else:
            target[key] = value
    return arrays, attrs


_n, _m = 24, 12
_DEFECTS = {
    "missing dataset": ({"basis": None}, "missing dataset 'basis'"),
    "missing attribute": ({"group_identity": None}, "missing attributes group_identity"),
    "wrong shape": ({"downsample": np.zeros((_m, _n + 1))}, "dataset 'downsample' has shape (12, 25), expected (12, 24)"),
    "transposed": ({"upsample": np.zeros((_m, _n))}, "dataset 'upsample' has shape (12, 24), expected (24, 12)"),
    "wrong dtype": ({"antialias": np.eye(_n, dtype=np.float32)}, "dataset 'antialias' has dtype float32, expected float64"),
    "names not strings": ({"group_element_names": np.arange(_n)}, "dataset 'group_element_names' must be a 1-d string dataset"),
    "node out of range": ({"subgroup_nodes": np.arange(_m, dtype=np.int64) + 13}, "'subgroup_nodes' has indices outside 0..23"),
    "negative cayley": ({"group_cayley": -np.ones((_n, _n), dtype=np.int32)}, "'group_cayley' has indices outside 0..23"),
    "NaN": ({"basis": np.full((_n, _m), np.nan)}, "dataset 'basis' holds NaN or infinite values"),
    "bands": ({"bands": np.zeros(1, dtype=[("eigenvalue", "<f8"), ("dimension", "<i8"), ("kept", "<i8")])},
              "dataset 'bands' is inconsistent"),
    "order attribute": ({"group_order": 25}, "disagree with D12>D6"),
    "identity": ({"group_identity": 24}, "attribute 'group_identity' = 24 is not an index below 24"),
    "int as string": ({"rate": "2"}, "attribute 'rate' is str '2', expected int"),
    "float as string": ({"solver_rank_tol": "1e-9"}, "attribute 'solver_rank_tol' is str"),
    "foreign format": ({"format": "something-else"}, "not a gscli operator file (format attribute is 'something-else'"),
    "version disagrees": ({"format_version": 1}, "format_version attribute 1 disagrees with the header"),
    "bad group spec": ({"group": "../../etc/passwd"}, "unknown group '../../etc/passwd'"),
    "bad subgroup spec": ({"subgroup": "C6; rm -rf /"}, "unknown subgroup type 'C6; rm -rf /'"),
    "subgroup does not divide": ({"subgroup": "C5"}, "|C5| = 5 does not divide |D12| = 24"),
    "bad JSON": ({"checks": "[{'name': 1}]"}, "attribute 'checks' is not valid JSON"),
    "deep JSON": ({"checks": "[" * 100_000}, "attribute 'checks' is not valid JSON"),
    "JSON not a list": ({"checks": '{"a": 1}'}, "attribute 'checks' must be a JSON list of objects"),
    "bad JSON id": ({"escnn_subgroup_id": "(0, 6)"}, "attribute 'escnn_subgroup_id' is not valid JSON"),
}


@pytest.mark.parametrize("defect", list(_DEFECTS))
def test_one_defect_in_an_otherwise_valid_file(tmp_path: Path, real: Any, defect: str) -> None:
    changes, message = _DEFECTS[defect]
    arrays, attrs = _with(*parts(real), **changes)
    path = forge(tmp_path / "D12-D6.h5", arrays, attrs)
    assert message in load_error(path)


def test_the_forger_makes_valid_files_when_nothing_is_wrong(tmp_path: Path, real: Any) -> None:
    """Control for the defect table: the same forging with no defect loads, equal to the original."""
    path = forge(tmp_path / "D12-D6.h5", *parts(real))
    back = read_operator(path)
    assert all(np.array_equal(back[k], real[k]) for k in real.arrays)


def test_strings_in_files_are_data_never_code(tmp_path: Path, real: Any) -> None:
    marker = tmp_path / "executed"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    pickled = (b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    arrays, attrs = parts(real)
    for key, value in (("group", payload), ("subgroup", payload), ("selection", payload), ("solver", payload)):
        path = forge(tmp_path / f"{key}.h5", arrays, {**attrs, key: value})
        try:
            data = read_operator(path)
        except FormatError as exc:
            assert key in ("group", "subgroup") and "unknown" in str(exc)
        else:
            assert data.attrs[key] == payload  # kept verbatim, as text
    path = forge(tmp_path / "pickle.h5", arrays, {**attrs, "checks": pickled})  # stored as a byte string
    assert "attribute 'checks' is not valid JSON" in load_error(path)
    path = forge(tmp_path / "opaque.h5", arrays, {**attrs, "checks": np.void(pickled)})  # stored as opaque bytes
    assert "attribute 'checks' is bytes" in load_error(path)
    assert not marker.exists()


def test_operator_data_api(store: Path) -> None:
    data = read_operator(store / "C8-C4.h5")
    assert data.path == store / "C8-C4.h5"
    assert data.spec == OperatorSpec.parse("C8>C4")
    assert {c["name"] for c in data.checks} >= {"projector_idempotent", "fft_lowpass"}
    assert all(c["passed"] for c in data.checks)
    assert data["downsample"].shape == (4, 8)


# ------------------------------------------------------------------------------------------
# builds over damaged files, stale temporaries, locks
# ------------------------------------------------------------------------------------------


def test_build_refuses_to_silently_keep_a_damaged_file(tmp_path: Path, store: Path) -> None:
    target = tmp_path / "C8-C4.h5"
    raw = bytearray((store / "C8-C4.h5").read_bytes())
    raw[-100] ^= 0xFF
    target.write_bytes(bytes(raw))
    assert not is_up_to_date(target, OperatorSpec.parse("C8>C4"))
    result = CliRunner().invoke(main, ["build", "C8", "--subgroup", "C4", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "exists and is not an up-to-date C8>C4 operator" in result.output
    assert "damaged: the file's sha256" in result.output and "pass --force" in result.output
    result = CliRunner().invoke(main, ["build", "C8", "--subgroup", "C4", "--out", str(tmp_path), "--force", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["operators"][0]["status"] == "rebuilt"
    assert np.array_equal(read_operator(target)["antialias"], read_operator(store / "C8-C4.h5")["antialias"])


def test_stale_temporaries_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = temporary_path(tmp_path / "C8-C4.h5").name.split("-")
    stale[-2] = str(dead.pid)  # ...-<host>-<pid>-<random>
    stale_path = tmp_path / "-".join(stale)
    live_path = temporary_path(tmp_path / "C8-C4.h5")  # this process: alive
    other = tmp_path / ".C8-C4.h5.tmp-00000000-1-abcdef01"  # another machine, recent
    unrelated = tmp_path / ".notes.tmp-keep"
    for p in (stale_path, live_path, other, unrelated):
        p.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [stale_path]
    old = time.time() - 2 * 24 * 3600
    os.utime(other, (old, old))
    assert remove_stale_temporaries(tmp_path) == [other]
    assert live_path.exists() and unrelated.exists()


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "x.h5"
    target.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


def test_write_lock_excludes_other_processes(tmp_path: Path) -> None:
    target = tmp_path / "C8-C4.h5"
    code = (
        "import sys, time; from pathlib import Path; from gscli.store import write_lock; "
        "from gscli.errors import StoreError\n"
        "try:\n    with write_lock(Path(sys.argv[1]), timeout=0.3): print('got it')\n"
        "except StoreError as e: print(e)"
    )
    with write_lock(target):
        out = subprocess.run([sys.executable, "-c", code, str(target)], env=_env(), capture_output=True, text=True)
        assert "another process has been writing" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-c", code, str(target)], env=_env(), capture_output=True, text=True)
    assert out.stdout.strip() == "got it"
    assert lock_path(target) == target.parent
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".")) == []  # no lock file left


# ------------------------------------------------------------------------------------------
# store location and path safety
# ------------------------------------------------------------------------------------------


def test_store_location_option_env_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["build", "C4", "--subgroup", "C2", "--json"], env={STORE_ENV: str(a)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["store"] == str(a)
    assert (a / "C4-C2.h5").is_file() and not (b / "C4-C2.h5").exists()
    result = runner.invoke(main, ["build", "C4", "--subgroup", "C2", "--out", str(b)], env={STORE_ENV: str(a)})
    assert result.exit_code == 0, result.output
    assert (b / "C4-C2.h5").is_file()  # --out wins over the environment
    result = runner.invoke(main, ["build", "C4", "--subgroup", "C2"], env={STORE_ENV: ""})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "operators" / "C4-C2.h5").is_file()  # the default, created on demand
    result = runner.invoke(main, ["build", "C4", "--subgroup", "C2"], env={STORE_ENV: str(tmp_path / "missing")})
    assert result.exit_code == 1
    assert f"store folder '{tmp_path / 'missing'}' does not exist" in result.output
    assert not (tmp_path / "missing").exists()


def test_default_store_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert default_store() == Path("operators")
    monkeypatch.setenv(STORE_ENV, str(tmp_path))
    assert default_store() == tmp_path
    assert operator_path("D12>D6") == tmp_path / "D12-D6.h5"


@pytest.mark.parametrize("text", [
    "../C8>C4", "C8>../C4", "/etc/passwd", "C8>C4/../../x", "..", "C8>C4\0", "C8>C4\\..\\x", "~/C8>C4", "C8>C4.h5",
])
def test_names_never_escape_the_store(tmp_path: Path, text: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    with pytest.raises(SpecError):
        operator_path(text, store)
    result = CliRunner().invoke(main, ["build", text, "--out", str(store)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ")
    assert [p.name for p in store.iterdir()] == [] and sorted(p.name for p in tmp_path.iterdir()) == ["store"]


# ------------------------------------------------------------------------------------------
# real processes: escnn's cache, kills during writes, concurrent builders and readers
# ------------------------------------------------------------------------------------------


# Runs ``python -m gscli ...`` with an audit hook that logs every path the process opens for writing,
# creates, renames or removes: precise even on a machine where other processes use the same escnn.
_AUDITED_GSCLI = """
import json, os, runpy, sys
log = sys.argv.pop(1)
written = []

def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2] or 0
        if (any(c in mode for c in "wax+") if isinstance(mode, str) else flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            written.append(os.path.realpath(os.fsdecode(args[0])))
    elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree"):
        paths = args[:2] if event == "os.rename" else args[:1]  # os.replace raises os.rename too
        written.extend(os.path.realpath(os.fsdecode(a)) for a in paths if isinstance(a, (str, bytes, os.PathLike)))

def save():
    with open(log, "w") as fh:
        json.dump(written, fh)

import atexit
atexit.register(save)
sys.addaudithook(hook)
sys.argv[0] = "gscli"
runpy.run_module("gscli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("group, subgroup", [("C8", "C4"), pytest.param("O", "C4", marks=pytest.mark.slow)])
def test_cold_escnn_cache_goes_to_the_user_cache_and_stdout_stays_json(tmp_path: Path, group: str, subgroup: str) -> None:
    """A build on a fresh GSCLI_CACHE_DIR: stdout is JSON only, escnn's cache lands there, its package is not written."""
    import importlib.util

    package = os.path.realpath(importlib.util.find_spec("escnn").submodule_search_locations[0])
    cache, out, log = tmp_path / "cache", tmp_path / "ops", tmp_path / "written.json"
    out.mkdir()
    env = {**_env(), "GSCLI_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-c", _AUDITED_GSCLI, str(log), "build", group, "--subgroup", subgroup,
                           "--json", "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert document["operators"][0]["operator"] == f"{group}>{subgroup}"
    assert [p.name for p in out.glob("*.h5")] == [f"{group}-{subgroup}.h5"]
    if group != "O":  # C_N and D_N are built without escnn; eval's escnn lifting convolution asks it instead
        assert not cache.exists(), "a planar build touched escnn's cache"
        proc = subprocess.run([sys.executable, "-c", _AUDITED_GSCLI, str(log), "eval", str(out / f"{group}-{subgroup}.h5"),
                               "--json"], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["files"][0]["passed"]
    assert (cache / "escnn" / "joblib" / "escnn" / "group").is_dir(), "escnn's cache was not redirected to GSCLI_CACHE_DIR"
    written = json.loads(log.read_text())
    inside_cache = [p for p in written if p.startswith(os.path.realpath(cache) + os.sep)]
    assert inside_cache, "the audit hook saw no write into GSCLI_CACHE_DIR: it does not work"
    if group == "O":  # octahedral builds store computed results in escnn's cache
        assert any(p.endswith(".pkl") for p in inside_cache), "no cached escnn result in GSCLI_CACHE_DIR"
    assert [p for p in written if p.startswith(package + os.sep)] == [], "escnn's package folder was written to"


_WRITER = """
import sys
from gscli.fileformat import read_operator, write_operator
source, target, tag = sys.argv[1:4]
data = read_operator(source)
attrs = dict(data.attrs)
print("ready", flush=True)
i = 0
while True:
    attrs["selection"] = f"{tag} {i}"
    write_operator(target, data.arrays, attrs)
    i += 1
"""


def test_sigkill_during_writes_leaves_old_or_new_file_and_next_build_cleans_up(tmp_path: Path, store: Path) -> None:
    """A child rewrites C128>C64 (430 kB) in a loop and is SIGKILLed at random moments.

    The file is assembled in memory and only then written, so a temporary exists for part of each
    write; every other round therefore waits for one to appear before the kill."""
    rng = random.Random(20250101)
    folder = tmp_path / "ops"
    folder.mkdir()
    target = folder / "C128-C64.h5"
    target.write_bytes((store / "C128-C64.h5").read_bytes())
    old_selection = read_operator(target).attrs["selection"]
    strays = 0
    for round_ in range(6):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(store / "C128-C64.h5"), str(target), f"round{round_}"],
                                 env=_env(), stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        while round_ % 2 and not list(folder.glob(".C128-C64.h5.tmp-*")):
            time.sleep(0.0005)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        data = read_operator(target)  # complete and verified: the old file or one full write
        selection = data.attrs["selection"]
        assert selection == old_selection or re.fullmatch(rf"round{round_} \d+", selection), selection
        old_selection = selection
        temporaries = list(folder.glob(".C128-C64.h5.tmp-*"))
        strays += bool(temporaries)
        result = build("C128", subgroup="C64", out=folder)
        assert result.status == "up-to-date"
        assert list(folder.glob(".*.tmp-*")) == []
    assert strays >= 3, f"only {strays} of 6 kills landed inside a write; the test did not exercise partial files"


_BUILDER = """
import json, sys, time
from pathlib import Path
from gscli.build import build
import gscli._escnn as e
e.load_group(e.GroupSpec.parse("C64"))  # warm up, so that the builders start together
folder, me, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(folder / f"ready-{me}").touch()
while len(list(folder.glob("ready-*"))) < count:
    time.sleep(0.001)
result = build("C64", subgroup="C32", out=folder / "store")
print(json.dumps(result.as_dict()))
"""


@pytest.mark.parametrize("count", [3, pytest.param(8, marks=pytest.mark.slow)])
def test_concurrent_builders_write_one_valid_file(tmp_path: Path, count: int) -> None:
    """Builders released together by a barrier: one builds, the others wait on the lock and find it done."""
    (tmp_path / "store").mkdir()
    children = [subprocess.Popen([sys.executable, "-c", _BUILDER, str(tmp_path), str(i), str(count)],
                                 env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(count)]
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err
    statuses = sorted(json.loads(out)["status"] for out, _ in outputs)
    assert statuses == ["built"] + ["up-to-date"] * (count - 1), statuses  # the lock: one builds, the rest wait
    checksums = {json.loads(out)["checksum"] for out, _ in outputs}
    data = read_operator(tmp_path / "store" / "C64-C32.h5")
    assert checksums == {data.attrs["checksum"]}
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["C64-C32.h5"]


_READER = """
import sys, time
from gscli.fileformat import read_operator
target, seconds = sys.argv[1], float(sys.argv[2])
seen, end = set(), time.monotonic() + seconds
while time.monotonic() < end:
    seen.add(read_operator(target).attrs["selection"])  # any FormatError ends the child with status 1
print(len(seen))
"""


def test_readers_during_replacement_always_see_a_complete_file(tmp_path: Path, store: Path) -> None:
    target = tmp_path / "C128-C64.h5"
    target.write_bytes((store / "C128-C64.h5").read_bytes())
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(store / "C128-C64.h5"), str(target), "w"],
                              env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        readers = [subprocess.Popen([sys.executable, "-c", _READER, str(target), "2.0"], env=_env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [reader.communicate(timeout=60) for reader in readers]
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()  # type: ignore[union-attr]
    for reader, (out, err) in zip(readers, outputs):
        assert reader.returncode == 0, err[-2000:]
        assert int(out) >= 5, "the reader saw too few replacements to test anything"


_LOOP_BUILDER = """
import sys
from gscli.build import build
folder = sys.argv[1]
i = 0
while True:
    result = build("C512", subgroup="C256", out=folder, force=True)
    print(result.status, i, flush=True)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_during_real_builds(tmp_path: Path) -> None:
    """``build(..., force=True)`` of C512>C256 (6.6 MB) in a loop, killed at random moments after its first write."""
    rng = random.Random(7)
    target = tmp_path / "C512-C256.h5"
    strays = 0
    for _ in range(4):
        child = subprocess.Popen([sys.executable, "-c", _LOOP_BUILDER, str(tmp_path)], env=_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().split()[0] in ("built", "rebuilt")
        time.sleep(rng.uniform(0.0, 2.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert read_operator(target).spec == OperatorSpec.parse("C512>C256")
        strays += bool(list(tmp_path.glob(".C512-C256.h5.tmp-*")))
        assert build("C512", subgroup="C256", out=tmp_path).status == "up-to-date"
        assert list(tmp_path.glob(".*.tmp-*")) == []
    print(f"{strays} of 4 kills left a partial temporary")
