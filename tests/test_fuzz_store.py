"""Fuzzing: the spec parser and the operator reader against random input.

- Random strings (and non-strings) given to the spec parsers raise nothing but :class:`SpecError`;
  what parses prints back to itself and names a file inside the store.
- Random byte flips, truncations and appended bytes of real operator files are always detected on
  load: :func:`read_operator` raises :class:`FormatError`, never returns an operator and never lets
  another exception out. One test flips every single byte of a real file.
- The same single-byte flips through every entry point that opens operator files (``gscli inspect``,
  ``gscli eval``, ``GroupDownsample.from_file`` and ``from_catalog``), one forked child per case with
  a timeout (``byteflip_worker.py``): no crash, hang, traceback, acceptance or "verified". A
  stratified sample runs by default, every byte in the slow run. The file is C8>C2, which the default
  catalog does not ship, so ``from_catalog`` really opens the store's damaged file (for a shipped
  operator it takes the shipped file and warns about the store's: ``test_install.py``).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gscli.build import build
from gscli.errors import FormatError, SpecError
from gscli.fileformat import read_operator
from gscli.specs import GroupSpec, OperatorSpec, SubgroupSpec
from gscli.store import operator_path

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that make near-valid specs likely, plus anything unicode.
_NEAR = st.text(alphabet="CDOIhTSvdi0123456789>-<. /\\\n\t\0", max_size=12)
_ANY = st.text(max_size=24)
_STEM = re.compile(r"[A-Za-z0-9]+-[A-Za-z0-9]+")


class _Files(dict):
    """Real operator files by name (a short repr keeps hypothesis' reports readable)."""

    def __repr__(self) -> str:
        return f"<operator files {', '.join(self)}>"


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz-store")
    return _Files({f"{g}-{h}": build(g, subgroup=h, out=folder).path.read_bytes() for g, h in (("C8", "C2"), ("D6", "D3"))})


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-scratch") / "damaged.h5"


def _must_fail(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        data = read_operator(path)
    except FormatError as exc:
        assert str(exc).startswith(f"{path}: ")
    else:
        raise AssertionError(f"damaged file loaded as {data.spec} without an error")


# ------------------------------------------------------------------------------------------
# spec strings
# ------------------------------------------------------------------------------------------


@SETTINGS
@given(text=st.one_of(_NEAR, _ANY))
def test_spec_parsers_raise_only_spec_errors(text: str) -> None:
    for parse in (GroupSpec.parse, SubgroupSpec.parse, OperatorSpec.parse):
        try:
            spec = parse(text)
        except SpecError as exc:
            assert str(exc)
            continue
        assert parse(str(spec)) == spec  # what parses prints back to itself
        if isinstance(spec, OperatorSpec):
            assert _STEM.fullmatch(spec.stem)
            path = operator_path(spec, Path("store"))
            assert path.parent == Path("store") and path.name == f"{spec.stem}.h5"


@SETTINGS
@given(value=st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=8), st.lists(st.text(max_size=3))))
def test_spec_parsers_reject_non_strings(value: object) -> None:
    for parse in (GroupSpec.parse, SubgroupSpec.parse, OperatorSpec.parse):
        with pytest.raises(SpecError, match="spec must be a string"):
            parse(value)


def test_near_miss_specs_are_caught() -> None:
    """Control: the strategies above do reach both outcomes (valid and invalid)."""
    assert OperatorSpec.parse(" D6 > D3 ") == OperatorSpec.parse("D6-D3")
    for bad in ("D6>D3>C1", "D 6>D3", "d6>D3", "D6>", "C0>C1", "C8>C3", "Oh>O\0", "C٣>C1"):
        with pytest.raises(SpecError):
            OperatorSpec.parse(bad)


# ------------------------------------------------------------------------------------------
# damaged files
# ------------------------------------------------------------------------------------------


def test_every_single_byte_flip_is_detected(files: dict[str, bytes], scratch: Path) -> None:
    """Flip each byte of a real file in turn (a random non-zero xor mask per byte)."""
    raw = files["C8-C2"]
    rng = random.Random(0)
    scratch.write_bytes(raw)
    fd = os.open(scratch, os.O_RDWR)
    try:
        for offset in range(len(raw)):  # damage one byte in place, read, repair
            os.pwrite(fd, bytes([raw[offset] ^ rng.randrange(1, 256)]), offset)
            try:
                data = read_operator(scratch)
            except FormatError as exc:
                assert str(exc).startswith(f"{scratch}: ")
            else:
                raise AssertionError(f"a flip at byte {offset} loaded as {data.spec} without an error")
            os.pwrite(fd, raw[offset:offset + 1], offset)
    finally:
        os.close(fd)
    assert read_operator(scratch).spec == OperatorSpec.parse("C8>C2")  # repaired: the loop really restored it


@SETTINGS
@given(data=st.data())
def test_random_byte_flips_are_detected(files: dict[str, bytes], scratch: Path, data: st.DataObject) -> None:
    raw = bytearray(files[data.draw(st.sampled_from(sorted(files)), label="file")])
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(1, 255)), min_size=1, max_size=4,
                               unique_by=lambda f: f[0]), label="flips")
    for offset, mask in flips:
        raw[offset] ^= mask
    _must_fail(scratch, bytes(raw))


@SETTINGS
@given(data=st.data())
def test_truncations_are_detected(files: dict[str, bytes], scratch: Path, data: st.DataObject) -> None:
    raw = files[data.draw(st.sampled_from(sorted(files)), label="file")]
    keep = data.draw(st.integers(0, len(raw) - 1), label="keep")
    _must_fail(scratch, raw[:keep])


@SETTINGS
@given(data=st.data())
def test_appended_and_overwritten_blocks_are_detected(files: dict[str, bytes], scratch: Path, data: st.DataObject) -> None:
    raw = files[data.draw(st.sampled_from(sorted(files)), label="file")]
    block = data.draw(st.binary(min_size=1, max_size=64), label="block")
    if data.draw(st.booleans(), label="append"):
        damaged = raw + block
    else:
        start = data.draw(st.integers(0, len(raw) - len(block)), label="start")
        damaged = raw[:start] + block + raw[start + len(block):]
        if damaged == raw:
            return
    _must_fail(scratch, damaged)


def test_undamaged_copies_load(files: dict[str, bytes], scratch: Path) -> None:
    """Control for the tests above: the same path and bytes, undamaged, load."""
    for name, raw in files.items():
        scratch.write_bytes(raw)
        assert read_operator(scratch).spec == OperatorSpec.parse(name)


# ------------------------------------------------------------------------------------------
# damaged files through every entry point, fork-isolated
# ------------------------------------------------------------------------------------------

_WORKER = Path(__file__).with_name("byteflip_worker.py")


def _flip_every_entry_point(path: Path, *args: str, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(_WORKER), str(path), "--json", *args], capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert run.returncode in (0, 1) and run.stdout, run.stderr[-2000:]
    return json.loads(run.stdout)


def _assert_every_flip_refused(result: dict, cases: int) -> None:
    assert result["cases"] == cases
    assert result["problems"] == [], result["problems"][:20]
    # control: each entry point gave a verdict for every case, and every verdict was a refusal
    assert result["verdicts"] == {name: {"refused": cases} for name in ("inspect", "eval", "from_file", "from_catalog")}


def test_single_byte_flips_through_every_entry_point(files: dict[str, bytes], tmp_path: Path) -> None:
    """Every byte of the header line and one byte in each of 64 slices of the rest of C8>C2."""
    path = tmp_path / "C8-C2.h5"
    path.write_bytes(files["C8-C2"])
    header = files["C8-C2"].index(b"\n") + 1
    result = _flip_every_entry_point(path, "--strata", "64", "--timeout", "60", timeout=900)
    _assert_every_flip_refused(result, header + 64)


@pytest.mark.slow
def test_every_single_byte_flip_through_every_entry_point(files: dict[str, bytes], tmp_path: Path) -> None:
    path = tmp_path / "C8-C2.h5"
    path.write_bytes(files["C8-C2"])
    result = _flip_every_entry_point(path, "--every-byte", "--timeout", "60", timeout=4 * 3600)
    _assert_every_flip_refused(result, len(files["C8-C2"]))


def test_damaged_file_in_a_real_process_is_one_line(files: dict[str, bytes], tmp_path: Path) -> None:
    """The console script itself (not click's test runner): exit status 1, one line on stderr, nothing on stdout."""
    raw = bytearray(files["C8-C2"])
    raw[len(raw) // 2] ^= 0x5A
    path = tmp_path / "C8-C2.h5"
    path.write_bytes(bytes(raw))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "gscli", "inspect", str(path)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith(f"Error: {path}: damaged: the file's sha256 is") and run.stderr.count("\n") == 1
