"""Train G-CNNs with anti-aliased, plain and no group downsampling on rotated digits (CPU, minutes).

For each configuration (default: the three in ``configs/``) the script

1. measures, over ``--seeds`` random initializations, the invariance error of the logits under the
   grid transforms of G outside the last stage's group, for anti-aliased and plain group
   downsampling on the *same* weights (how often anti-aliasing is lower, and the median ratio);
2. trains the three variants (``antialiased``, ``plain``, ``none``), ``--train-seeds`` times each
   (seeds ``training.seed + i``: weights, data split and angles), with the configuration's
   ``[training]`` settings on scikit-learn's digits (1297 training digits, each batch rotated by
   random angles) and tests them on 500 held-out digits rotated by random angles;

and prints, per variant: test accuracy (rotated and upright), the invariance of the predictions
under the grid transforms of G (mean relative logit error outside the last group, the worst
inside it, and the fraction of test digits whose predicted class is the same under all of them),
the relative logit change under a 30-degree rotation (bilinear interpolation, so approximate),
parameters, activations per image, and training time, with ratios against the ``none`` variant of
the same run; measured values are means over the training seeds.

Usage::

    python benchmarks/train.py                      # p4 and p4m, 2 training seeds: about 4 minutes on 2 cores
    python benchmarks/train.py --configs configs/d12-digits.json --train-seeds 1   # D12: about 4 minutes
    python benchmarks/train.py --configs configs/p4-digits.toml --epochs 3 --seeds 3 --train-seeds 1
    python benchmarks/train.py --json > train.json

Operator files come from ``--store`` (default: the operator store); missing ones are built.
Timings depend on the machine and its load: compare them only within one run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from gscli.models import VARIANTS, load_config
from gscli.models._analysis import grid_transforms, prediction_invariance, propagate_errors
from gscli.models._build import build_model
from gscli.models._data import load_dataset, random_rotations, rotate
from gscli.models._train import accuracy, predict, train

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIGS = ["configs/p4-digits.toml", "configs/p4m-digits.toml"]
_AVERAGED = ("test_accuracy_rotated", "test_accuracy_upright", "logits_invariance_outside_mean",
             "logits_invariance_inside_max", "prediction_agreement", "logits_change_30deg_interpolated", "train_seconds")


def seed_sweep(config: Any, seeds: int, images: int, store: str | None) -> dict[str, Any]:
    """Anti-aliased vs plain on the same random weights: logit error outside the last group, and the
    worst equivariance error (features lifted to G) outside H right after each group layer."""
    pairs, layers = [], {}
    for seed in range(seeds):
        aa, plain = propagate_errors(config, variants=("antialiased", "plain"), images=images, seed=seed,
                                     store=store).variants
        pairs.append((aa.logits_outside, plain.logits_outside))
        for a, p in zip(aa.layers, plain.layers):
            if a.kind == "group":
                layers.setdefault(a.name, []).append((a.worst("equivariance", False), p.worst("equivariance", False)))
    return {
        "seeds": seeds,
        "images": images,
        "antialiased_lower": sum(a < p for a, p in pairs),
        "median_antialiased": statistics.median(a for a, _ in pairs),
        "median_plain": statistics.median(p for _, p in pairs),
        "median_ratio_plain_over_antialiased": statistics.median(p / a for a, p in pairs),
        "range_ratio": [min(p / a for a, p in pairs), max(p / a for a, p in pairs)],
        "group_layers": {name: {"antialiased_lower": sum(a < p for a, p in v),
                                "median_antialiased": statistics.median(a for a, _ in v),
                                "median_plain": statistics.median(p for _, p in v)} for name, v in layers.items()},
    }


def train_variant(config: Any, variant: str, store: str | None) -> dict[str, Any]:
    """Train one variant with ``config.training`` (its seed picks weights, split and angles); measure it."""
    settings = config.training
    train_set, test_set = load_dataset(settings.dataset, config.image_size, settings.test_size, settings.seed)
    rotated = random_rotations(test_set.images, torch.Generator().manual_seed(settings.seed + 1))
    model = build_model(config, variant, store=store, seed=settings.seed)
    result = train(model, train_set, settings)
    transforms = grid_transforms(model)
    errors, agreement = prediction_invariance(model, rotated, transforms)
    base = predict(model, test_set.images)
    turned = predict(model, rotate(test_set.images, torch.full((len(test_set),), math.radians(30.0))))
    interpolated = float((turned - base).norm() / base.norm())
    final = model.block_specs[-1].nodes_in_g
    inside = [errors[t.name] for t in transforms if t.index in final]
    outside = [errors[t.name] for t in transforms if t.index not in final]
    return {
        "variant": variant,
        "groups": [str(config.group)] + [str(op.subgroup) for op in model.operators if op is not None],
        "test_accuracy_rotated": accuracy(predict(model, rotated), test_set.labels),
        "test_accuracy_upright": accuracy(predict(model, test_set.images), test_set.labels),
        "logits_invariance_outside_mean": statistics.mean(outside) if outside else None,
        "logits_invariance_inside_max": max(inside) if inside else None,
        "prediction_agreement": agreement,
        "logits_change_30deg_interpolated": interpolated,
        "parameters": model.parameter_count(),
        "activations_per_image": model.activation_count(),
        "train_seconds": result.seconds,
        "losses": list(result.losses),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread (min, max) of the measured values over training seeds."""
    row = {k: runs[0][k] for k in ("variant", "groups", "parameters", "activations_per_image")}
    for key in _AVERAGED:
        values = [r[key] for r in runs if r[key] is not None]
        row[key] = statistics.mean(values) if values else None
        row[key + "_range"] = [min(values), max(values)] if values else None
    row["runs"] = runs
    return row


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="model configurations")
    parser.add_argument("--epochs", type=int, help="override the configurations' epochs")
    parser.add_argument("--seeds", type=int, default=5, help="random initializations for the same-weights sweep")
    parser.add_argument("--train-seeds", type=int, default=2,
                        help="training runs per variant (seeds of weights, data split and angles); 0: sweep only")
    parser.add_argument("--images", type=int, default=64, help="digits per sweep measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--store", help="operator store (default: $GSCLI_STORE or operators/)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON document to FILE")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    document: dict[str, Any] = {"threads": args.threads, "torch": torch.__version__, "configs": []}
    start = time.perf_counter()
    for path in args.configs:
        config = load_config(path)
        if args.epochs is not None:
            config = replace(config, training=replace(config.training, epochs=args.epochs))
        print(f"[{time.perf_counter() - start:6.1f} s] {config.name}: same-weights sweep over {args.seeds} seeds",
              file=sys.stderr, flush=True)
        sweep = seed_sweep(config, args.seeds, args.images, args.store) if args.seeds else None
        rows = []
        for variant in VARIANTS if args.train_seeds > 0 else ():
            runs = []
            for repeat in range(args.train_seeds):
                seeded = replace(config, training=replace(config.training, seed=config.training.seed + repeat))
                print(f"[{time.perf_counter() - start:6.1f} s] {config.name}: training {variant} "
                      f"({config.training.epochs} epochs, seed {seeded.training.seed})", file=sys.stderr, flush=True)
                runs.append(train_variant(seeded, variant, args.store))
            rows.append(summarize(runs))
        for row in rows:
            row["train_time_ratio_vs_none"] = row["train_seconds"] / rows[-1]["train_seconds"]  # rows[-1]: none
            row["activation_ratio_vs_none"] = row["activations_per_image"] / rows[-1]["activations_per_image"]
        document["configs"].append({"config": path, "name": config.name, "epochs": config.training.epochs,
                                    "sweep": sweep, "variants": rows})
        if args.json:
            continue
        print(f"\n{config.name} ({path}), {config.training.epochs} epochs, {args.threads} threads, "
              + (f"means over {args.train_seeds} training seeds (acc rot: min-max)" if rows else "sweep only"))
        if sweep:
            print(f"  same random weights, {sweep['seeds']} seeds x {sweep['images']} digits: logit error outside "
                  f"the last group, median antialiased {sweep['median_antialiased']:.2e} vs plain "
                  f"{sweep['median_plain']:.2e}; antialiased lower in {sweep['antialiased_lower']}/{sweep['seeds']} "
                  f"seeds, plain/antialiased median {sweep['median_ratio_plain_over_antialiased']:.2f} "
                  f"(range {sweep['range_ratio'][0]:.2f}-{sweep['range_ratio'][1]:.2f})")
            for name, v in sweep["group_layers"].items():
                print(f"  {name}: worst equivariance outside H (lifted to G), median antialiased "
                      f"{v['median_antialiased']:.2e} vs plain {v['median_plain']:.2e}; antialiased lower in "
                      f"{v['antialiased_lower']}/{sweep['seeds']} seeds")
        if not rows:
            continue
        header = (f"  {'variant':<12}{'groups':<14}{'acc rot':>8}{'min-max':>12}{'acc up':>8}{'inv out':>10}{'inv in':>10}"
                  f"{'agree':>7}{'30 deg':>8}{'params':>8}{'acts/img':>10}{'train s':>9}{'t/none':>7}{'a/none':>7}")
        print(header)
        for r in rows:
            print(f"  {r['variant']:<12}{'>'.join(r['groups']):<14}{r['test_accuracy_rotated']:>8.3f}"
                  f"{'{:.3f}-{:.3f}'.format(*r['test_accuracy_rotated_range']):>12}"
                  f"{r['test_accuracy_upright']:>8.3f}{_fmt(r['logits_invariance_outside_mean'], '.2e'):>10}"
                  f"{_fmt(r['logits_invariance_inside_max'], '.1e'):>10}{r['prediction_agreement']:>7.3f}"
                  f"{r['logits_change_30deg_interpolated']:>8.3f}"
                  f"{r['parameters']:>8}{r['activations_per_image']:>10}{r['train_seconds']:>9.1f}"
                  f"{r['train_time_ratio_vs_none']:>7.2f}{r['activation_ratio_vs_none']:>7.2f}")
    document["seconds"] = time.perf_counter() - start
    if args.save:
        Path(args.save).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(f"\ntotal {document['seconds']:.0f} s. acc rot/up: test accuracy on rotated/upright digits; inv out: "
              "mean relative logit change under grid transforms of G outside the last group (rotated test digits); "
              "inv in: worst inside it (theory: 0); agree: fraction of test digits whose predicted class is the same "
              "under all grid transforms of G; 30 deg: relative logit change when the upright test digits are rotated by 30 "
              "degrees with bilinear interpolation (not exact on the grid; in D12 for the d12 model); t/none, a/none: training time and activations relative to no group "
              "downsampling.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
