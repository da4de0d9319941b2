"""Load test: many processes loading and applying the same operator file at once.

Each of ``--processes`` workers loads the operator ``--loads`` times with
:func:`gscli.fileformat.read_operator` (header, whole-file sha256, structure and dataset checksum
verified on every load) and applies it (``x @ D.T`` with numpy), comparing the result with the
one computed before the run: any exception or different number counts as a failure. With
``--writer``, another process keeps replacing the file (same operator, atomic rename) meanwhile.

Baseline, measured in the same run and the same way: reading the same datasets with plain
``h5py.File(path)`` and no verification at all. The ratio is the price of the guarantees.

    python benchmarks/load.py                       # D16>D8 and C256>C128, 8 processes x 500 loads
    python benchmarks/load.py --operator C1024>C512 --loads 50 --writer
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gscli.fileformat import read_operator, write_operator  # noqa: E402


def _input(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((64, n))


def _verified(path: str, loads: int, n: int, expected: np.ndarray, start: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    x = _input(n)
    start.wait()
    failures, load_time = 0, 0.0
    t0 = time.perf_counter()
    for _ in range(loads):
        t = time.perf_counter()
        try:
            data = read_operator(path)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure
            failures += 1
            print(f"load failed: {exc}", file=sys.stderr)
            continue
        load_time += time.perf_counter() - t
        if not np.array_equal(x @ data["downsample"].T, expected):
            failures += 1
    out.put((load_time, time.perf_counter() - t0, failures))


def _raw(path: str, loads: int, n: int, expected: np.ndarray, start: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import h5py

    x = _input(n)
    start.wait()
    failures, load_time = 0, 0.0
    t0 = time.perf_counter()
    for _ in range(loads):
        t = time.perf_counter()
        with h5py.File(path, "r") as f:
            arrays = {name: f[name][()] for name in f}
            attrs = dict(f.attrs)
        load_time += time.perf_counter() - t
        if not attrs or not np.array_equal(x @ arrays["downsample"].T, expected):
            failures += 1
    out.put((load_time, time.perf_counter() - t0, failures))


def _writer(path: str, stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    data = read_operator(path)
    count = 0
    while not stop.is_set():
        write_operator(Path(path), data.arrays, data.attrs)
        count += 1
    out.put(count)


def _run(worker, path: str, processes: int, loads: int, n: int, expected: np.ndarray,
         writer: bool) -> tuple[float, float, int, int]:
    ctx = mp.get_context("fork")
    start, stop, out, written = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(path, loads, n, expected, start, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    w = ctx.Process(target=_writer, args=(path, stop, written)) if writer else None
    if w is not None:
        w.start()
    wall = time.perf_counter()
    start.set()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - wall
    for p in procs:
        p.join()
    rewrites = 0
    if w is not None:
        stop.set()
        rewrites = written.get()
        w.join()
    failures = sum(r[2] for r in results) + sum(p.exitcode != 0 for p in procs)
    per_load = sum(r[0] for r in results) / (processes * loads)
    return per_load, wall, failures, rewrites


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operator", action="append", help="operator spec (repeatable) [default: D16>D8, C256>C128]")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--loads", type=int, default=500)
    parser.add_argument("--store", type=Path, help="existing store to read from (default: build into a temporary one)")
    parser.add_argument("--writer", action="store_true", help="replace the file continuously during the verified run")
    args = parser.parse_args()
    specs = args.operator or ["D16>D8", "C256>C128"]
    folder = args.store or Path(tempfile.mkdtemp(prefix="gscli-load-"))
    print(f"{args.processes} processes x {args.loads} loads each, on {os.cpu_count()} CPUs; store {folder}")
    header = (f"{'operator':<12}{'file':>10}{'verified':>13}{'raw h5py':>13}{'ratio':>8}{'wall':>9}"
              f"{'loads/s':>10}{'failures':>10}")
    print(header)
    failures = 0
    for text in specs:
        from gscli.store import operator_path

        path = operator_path(text, folder)
        if not path.exists():
            from gscli.build import build
            from gscli.specs import OperatorSpec

            spec = OperatorSpec.parse(text)
            build(spec.group, subgroup=spec.subgroup, out=folder)
        downsample = read_operator(path)["downsample"]
        n = downsample.shape[1]
        expected = _input(n) @ downsample.T
        verified, wall, bad, rewrites = _run(_verified, str(path), args.processes, args.loads, n, expected, args.writer)
        raw, _, raw_bad, _ = _run(_raw, str(path), args.processes, args.loads, n, expected, False)
        failures += bad + raw_bad
        size = f"{path.stat().st_size / 1024:.0f} kB"
        rate = args.processes * args.loads / wall
        print(f"{text:<12}{size:>10}{verified * 1e3:>10.2f} ms{raw * 1e3:>10.2f} ms{verified / raw:>7.2f}x{wall:>8.1f}s"
              f"{rate:>10.0f}{bad:>10}"
              + (f"   ({rewrites} replacements during the run)" if args.writer else ""))
    print("time per load = mean wall time of one read_operator call (verified) or one plain h5py read of every "
          "dataset and attribute (raw h5py) while all processes run; loads/s = verified loads (and applications) "
          "per second of wall time, all processes together")
    if args.store is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
