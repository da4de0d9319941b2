"""Byte-flip fuzzing of every entry point that opens an operator file, one forked child per case.

Run by ``tests/test_fuzz_store.py`` (a stratified sample by default, every byte in the slow run),
or by hand for the full numbers::

    python tests/byteflip_worker.py operators/C8-C4.h5 --every-byte --json

For each case (offset, xor mask) the worker writes the damaged copy into a scratch store under the
original name, forks a child and, in the child, opens the file through each entry point in turn:
``gscli inspect FILE``, ``gscli eval FILE`` (both through the click command, as the console script
runs them), ``GroupDownsample.from_file`` and ``GroupDownsample.from_catalog``. The child reports
one verdict per entry point on a pipe. The worker waits at most ``--timeout`` seconds per case: a
child that is still running is killed and the entry point it was in counts as a hang; a child
killed by a signal (segmentation fault, abort) counts as a crash of that entry point.

A verdict is ``refused`` when the entry point refused the file the documented way (the CLI: exit
status 1, an ``Error:`` line or an ``unreadable`` report, no traceback, no ``verified``; the
library: :class:`gscli.errors.FormatError` naming the file). Anything else is a problem: the file
was accepted (exit 0, a layer returned, ``verified`` printed), another exception escaped (a
traceback), a crash or a hang.

Only the standard library is imported at module level (pytest imports this file for doctests).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ENTRY_POINTS = ("inspect", "eval", "from_file", "from_catalog")


def stratified_offsets(size: int, header: int, per_stratum: int, strata: int, seed: int) -> list[int]:
    """Every byte of the header's text line, then ``per_stratum`` random offsets in each of ``strata``
    equal slices of the rest of the file (so the superblock, object headers, attributes, B-trees,
    heaps and raw data all get flips, wherever HDF5 put them).

    >>> offs = stratified_offsets(12856, 111, 1, 64, 0)
    >>> offs[:111] == list(range(111)) and len(offs) == 111 + 64 and len(set(offs)) == len(offs)
    True
    """
    rng = random.Random(seed)
    offsets = list(range(header))
    edges = [header + (size - header) * i // strata for i in range(strata + 1)]
    for lo, hi in zip(edges, edges[1:]):
        if hi > lo:
            offsets += sorted(rng.sample(range(lo, hi), min(per_stratum, hi - lo)))
    return offsets


def _verdict_cli(result, path: Path, command: str) -> str:
    """``refused`` for a clean CLI refusal of a damaged file, else what went wrong."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"traceback: {type(result.exception).__name__}: {str(result.exception)[:160]}"
    out, err = result.stdout, result.stderr
    if "Traceback" in out + err:
        return "traceback printed"
    if result.exit_code == 0:
        return "accepted: exit status 0"
    if result.exit_code != 1:
        return f"exit status {result.exit_code}, expected 1"
    if "verified" in out.replace("unverified", ""):
        return "reported as verified"
    if command == "inspect":
        if not err.startswith("Error: ") or err.count("\n") != 1 or str(path) not in err:
            return f"not a one-line error naming the file: {err[:160]!r}"
    elif "unreadable" not in out + err:
        return f"no 'unreadable' report: {(out + err)[:160]!r}"
    return "refused"


def _child(path: Path, store: Path, stem: str, report: int) -> None:
    from click.testing import CliRunner

    from gscli.cli import main
    from gscli.errors import FormatError
    from gscli.nn import GroupDownsample

    def library(load) -> str:
        try:
            layer = load()
        except FormatError as exc:
            return "refused" if str(exc).startswith(f"{path}: ") else f"error does not name the file: {exc}"
        return f"accepted: {layer!r}"

    steps = {
        "inspect": lambda: _verdict_cli(CliRunner().invoke(main, ["inspect", str(path)]), path, "inspect"),
        "eval": lambda: _verdict_cli(CliRunner().invoke(main, ["eval", str(path)]), path, "eval"),
        "from_file": lambda: library(lambda: GroupDownsample.from_file(path)),
        "from_catalog": lambda: library(lambda: GroupDownsample.from_catalog(stem, store=store, build=False)),
    }
    for name in ENTRY_POINTS:
        try:
            verdict = steps[name]()
        except BaseException as exc:  # noqa: BLE001 - anything escaping is the finding
            verdict = f"traceback: {type(exc).__name__}: {str(exc)[:160]}"
        os.write(report, (json.dumps([name, verdict]) + "\n").encode())


def run_case(path: Path, store: Path, stem: str, timeout: float) -> dict[str, str]:
    """Fork a child that opens ``path`` through every entry point; return one verdict per entry point."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into the worker
        code = 0
        try:
            os.close(read)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # the HDF5 library writes diagnostics straight to the file descriptors
            os.dup2(devnull, 2)
            _child(path, store, stem, write)
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(write)
    verdicts: dict[str, str] = {}
    buffer = b""
    deadline = time.monotonic() + timeout
    status = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([read], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(read, 65536)
            if not chunk:  # the child closed the pipe: it exited (or was killed)
                _, status = os.waitpid(pid, 0)
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                name, verdict = json.loads(line)
                verdicts[name] = verdict
    os.close(read)
    pending = [name for name in ENTRY_POINTS if name not in verdicts]
    if status is None:  # still running at the deadline
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if pending:
            verdicts[pending[0]] = f"hang: still running after {timeout:g} s"
    elif os.WIFSIGNALED(status) and pending:
        verdicts[pending[0]] = f"crash: killed by {signal.Signals(os.WTERMSIG(status)).name}"
    elif pending:
        verdicts[pending[0]] = f"child exited with status {os.waitstatus_to_exitcode(status)} before reporting"
    for name in pending[1:]:
        verdicts.setdefault(name, "not reached")
    return verdicts


def fuzz(source: Path, offsets: list[int], seed: int = 0, timeout: float = 20.0, progress=None) -> dict:
    """Flip one byte per case (a seeded random non-zero xor mask) and collect every entry point's verdict."""
    import torch  # noqa: F401 - imported once here, so that every forked child starts with it

    import gscli.cli  # noqa: F401
    import gscli.nn  # noqa: F401

    raw = source.read_bytes()
    stem = source.name.removesuffix(".h5")
    rng = random.Random(seed)
    counts = {name: {} for name in ENTRY_POINTS}
    problems = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gscli-byteflip-") as scratch:
        store = Path(scratch)
        path = store / source.name
        for i, offset in enumerate(offsets):
            mask = rng.randrange(1, 256)
            damaged = bytearray(raw)
            damaged[offset] ^= mask
            path.write_bytes(bytes(damaged))
            for name, verdict in run_case(path, store, stem, timeout).items():
                kind = verdict.split(":")[0]
                counts[name][kind] = counts[name].get(kind, 0) + 1
                if verdict != "refused":
                    problems.append({"offset": offset, "mask": mask, "entry_point": name, "verdict": verdict})
            if progress is not None:
                progress(i + 1, len(offsets), len(problems))
        shutil.rmtree(store, ignore_errors=True)
    return {"file": str(source), "size": len(raw), "cases": len(offsets), "seed": seed, "timeout": timeout,
            "seconds": round(time.monotonic() - start, 1), "verdicts": counts, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a real, undamaged operator file (e.g. operators/C8-C4.h5)")
    parser.add_argument("--every-byte", action="store_true", help="flip every byte (else a stratified sample)")
    parser.add_argument("--strata", type=int, default=128, help="slices of the file after the header line")
    parser.add_argument("--per-stratum", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--shard", default="0/1", metavar="I/N", help="run only every N-th case, starting at I")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    args = parser.parse_args(argv)
    raw = args.file.read_bytes()
    header = raw.index(b"\n") + 1
    offsets = (list(range(len(raw))) if args.every_byte
               else stratified_offsets(len(raw), header, args.per_stratum, args.strata, args.seed))
    index, count = (int(part) for part in args.shard.split("/"))
    offsets = offsets[index::count]

    def progress(done: int, total: int, bad: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"{done}/{total} cases, {bad} problems", file=sys.stderr, flush=True)

    result = fuzz(args.file, offsets, args.seed, args.timeout, progress)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{result['cases']} single-byte flips of {result['file']} ({result['size']} bytes) in {result['seconds']} s")
        for name, kinds in result["verdicts"].items():
            print(f"  {name:<13} " + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())))
        for p in result["problems"][:50]:
            print(f"  offset {p['offset']} xor {p['mask']:#04x}, {p['entry_point']}: {p['verdict']}")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
