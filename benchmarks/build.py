"""Time and peak memory of building operators (``python benchmarks/build.py``).

For each operator: escnn's one-off group set-up (tables and subgroup list, cached per process) is
timed apart; then the build proper (subgroup selection over every candidate, solve, all checks) is
timed as the best of a few runs, with the peak of Python-tracked allocations (numpy included).
Ratios: time against the goal (<= 1 passes), and peak memory against one dense n x n float64 matrix
(constant across n means memory grows as n^2).
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--catalog", type=Path, default=Path(__file__).parents[1] / "operators" / "catalog.txt")
    args = parser.parse_args()
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
