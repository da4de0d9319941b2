"""Time ``gscli eval --catalog`` on the default catalog (goal: under 60 seconds).

Builds the default catalog (``gscli/catalog/catalog.txt``) into a temporary store, then times, each in a
fresh process as a user would run it:

* ``gscli build --out STORE``            (the exact float64 build: the reference point)
* ``gscli eval --catalog --no-signals``  (only the re-checks from the stored arrays)
* ``gscli eval --catalog``               (re-checks + plain vs anti-aliased signal experiments)

and prints the wall-clock seconds and the ratios against the build and the checks-only run,
measured in the same run.

Usage::

    python benchmarks/eval_catalog.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60.0


def _gscli(*args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gscli", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"gscli {' '.join(args)} exited with {done.returncode}:\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each eval (the best is reported)")
    args = parser.parse_args()
    catalog = ROOT / "gscli" / "catalog" / "catalog.txt"
    with tempfile.TemporaryDirectory(prefix="gscli-bench-") as tmp:
        store = Path(tmp)
        build_s = _gscli("build", "--out", str(store), "--catalog", str(catalog), "--force", "--json")
        files = sorted(store.glob("*.h5"))
        checks_s = min(_gscli("eval", "--catalog", "--out", str(store), "--no-signals", "--json")
                       for _ in range(args.repeat))
        full = [_gscli("eval", "--catalog", "--out", str(store), "--json") for _ in range(args.repeat)]
    eval_s = min(full)
    print(f"default catalog: {len(files)} operators ({', '.join(f.stem for f in files)})")
    print(f"gscli build (baseline)            {build_s:7.2f} s")
    print(f"gscli eval --catalog --no-signals {checks_s:7.2f} s   {checks_s / build_s:5.2f} x build")
    print(f"gscli eval --catalog              {eval_s:7.2f} s   {eval_s / build_s:5.2f} x build, "
          f"{eval_s / checks_s:5.2f} x checks only   (runs: {', '.join(f'{s:.2f}' for s in full)})")
    verdict = "meets" if eval_s < GOAL_SECONDS else "MISSES"
    print(f"goal: eval --catalog under {GOAL_SECONDS:.0f} s: {verdict} ({eval_s:.1f} s)")
    if eval_s >= GOAL_SECONDS:
        sys.exit(1)


if __name__ == "__main__":
    main()
