"""Time and peak memory of building operators (``python benchmarks/build.py``).

Part 1 (the catalog and a few mid sizes): escnn's one-off group set-up (tables and subgroup list,
cached per process) is timed apart; then the build proper (subgroup selection over every
candidate, solve, all checks) is timed as the best of a few runs, with the peak of Python-tracked
allocations (numpy included). Ratios: time against the goal (<= 1 passes), and peak memory against
one dense n x n float64 matrix (constant across n means memory grows as n^2).

Part 2 (the largest groups, ``--large``): ``gscli build`` of C4096 > C2048 and D2048 > D1024 into a
temporary folder, file written and verified, each in a fresh process, and ``gscli subgroups`` of
C4096 and D2048. Reported: wall and CPU seconds against the goal (60 s), the peak resident memory
of the process against the goal (3 GB) and against gscli's own estimate (``estimate_build_memory``,
which must stay above it), and the time as a multiple of one 4096 x 4096 float64 matrix product
measured in the same run (wall times are noisy on a shared machine; the ratio is not).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from gscli import _escnn
from gscli.build import build_operator, read_catalog
from gscli.specs import OperatorSpec

EXTRA = ["C512>C256", "D256>D128", "Ih>I", "C64>C32", "C128>C64", "C256>C128", "C1024>C512"]
GOALS = {"C512>C256": 2.0}
CATALOG_GOAL = 0.050


def measure(spec: OperatorSpec, repeats: int) -> dict:
    t0 = time.perf_counter()
    _escnn.load_group(spec.group)
    _escnn.subgroups(spec.group, spec.subgroup.order)
    setup = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        op = build_operator(spec.group, subgroup=spec.subgroup)
        best = min(best, time.perf_counter() - t0)
    assert op.ok, f"{spec}: a check failed"
    tracemalloc.start()
    build_operator(spec.group, subgroup=spec.subgroup)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = spec.group.order
    return {"spec": str(spec), "n": n, "setup": setup, "build": best, "peak": peak, "per_n2": peak / (8 * n * n)}


LARGE = ["C4096>C2048", "D2048>D1024"]
LARGE_SUBGROUPS = ["C4096", "D2048"]
LARGE_GOAL_S, LARGE_GOAL_BYTES = 60.0, 3e9

_CHILD = r"""
import json, resource, sys, tempfile, time
import numpy as np
what, arg = sys.argv[1], sys.argv[2]
wall, cpu = time.perf_counter(), time.process_time()
if what == "build":
    from gscli.build import build, estimate_build_memory
    from gscli.specs import OperatorSpec
    spec = OperatorSpec.parse(arg)
    with tempfile.TemporaryDirectory() as out:
        r = build(spec.group, None, spec.subgroup, out=out)
        size = (r.path).stat().st_size
    extra = {"status": r.status, "worst_check": max(c["error"] for c in r.checks), "file_bytes": size,
             "estimate": estimate_build_memory(spec.group.order, spec.subgroup.order)}
elif what == "subgroups":
    from gscli.cli.subgroups import subgroup_rows
    from gscli.specs import GroupSpec
    extra = {"rows": len(subgroup_rows(GroupSpec.parse(arg)))}
else:
    a = np.random.default_rng(0).standard_normal((4096, 4096))
    wall, cpu = time.perf_counter(), time.process_time()
    a @ a
    extra = {}
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, **extra}))
"""


def _child(what: str, arg: str = "") -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", _CHILD, what, arg], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def large() -> None:
    base = _child("matmul")
    print(f"baseline: one 4096x4096 float64 matrix product, one thread: {base['wall']:.2f} s wall, {base['cpu']:.2f} s CPU")
    print(f"{'command':<34} {'wall s':>7} {'CPU s':>6} {'goal s':>6} {'CPU/goal':>8} {'x matmul':>8} "
          f"{'peak GB':>8} {'goal GB':>7} {'peak/est':>8}  worst check")
    for spec in LARGE:
        r = _child("build", spec)
        print(f"{'gscli build ' + spec:<34} {r['wall']:>7.1f} {r['cpu']:>6.1f} {LARGE_GOAL_S:>6.0f} "
              f"{r['cpu'] / LARGE_GOAL_S:>8.2f} {r['cpu'] / base['cpu']:>8.1f} {r['peak'] / 1e9:>8.2f} "
              f"{LARGE_GOAL_BYTES / 1e9:>7.1f} {r['peak'] / r['estimate']:>8.2f}  {r['worst_check']:.1e} "
              f"({r['file_bytes'] / 1e6:.0f} MB file)")
    for group in LARGE_SUBGROUPS:
        r = _child("subgroups", group)
        print(f"{'gscli subgroups ' + group:<34} {r['wall']:>7.1f} {r['cpu']:>6.1f} {'-':>6} {'-':>8} "
              f"{r['cpu'] / base['cpu']:>8.1f} {r['peak'] / 1e9:>8.2f} {'-':>7} {'-':>8}  ({r['rows']} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--catalog", type=Path, default=Path(__file__).parents[1] / "gscli" / "catalog" / "catalog.txt")
    parser.add_argument("--large", action="store_true", help="only part 2: the largest groups, each in a fresh process")
    args = parser.parse_args()
    if args.large:
        large()
        return
    rows = [(measure(s, args.repeats), CATALOG_GOAL) for s in read_catalog(args.catalog)]
    rows += [(measure(OperatorSpec.parse(s), 1), GOALS.get(s)) for s in EXTRA]
    print(f"{'operator':<12} {'|G|':>5} {'setup s':>8} {'build ms':>9} {'goal ms':>8} {'ratio':>6} "
          f"{'peak MiB':>9} {'peak/(8n^2)':>11}")
    for r, goal in rows:
        ratio = f"{r['build'] / goal:6.2f}" if goal else "     -"
        goal_ms = f"{goal * 1e3:8.0f}" if goal else "       -"
        print(f"{r['spec']:<12} {r['n']:>5} {r['setup']:>8.2f} {r['build'] * 1e3:>9.1f} {goal_ms} {ratio} "
              f"{r['peak'] / 2**20:>9.2f} {r['per_n2']:>11.1f}")
    cat = [r for r, g in rows if g == CATALOG_GOAL]
    print(f"catalog: worst build {max(r['build'] for r in cat) * 1e3:.1f} ms (goal {CATALOG_GOAL * 1e3:.0f} ms), "
          f"total group set-up {sum(r['setup'] for r in cat):.1f} s")


if __name__ == "__main__":
    main()
