"""3-D G-CNNs (O, O_h) on tetracube voxels: anti-aliased vs plain vs no group downsampling (CPU, minutes).

For each voxel configuration (default: ``configs/oh-polycubes.toml`` and ``configs/o-polycubes.toml``)
the script

1. times a **cold** escnn cache apart: in a fresh process with an empty ``GSCLI_CACHE_DIR`` and an
   empty operator store, it loads G from escnn, reads off the voxel permutations and builds the
   configuration's operators; then the same again in another process with the now warm cache;
2. for every variant (``antialiased``, ``plain``, ``none``) and ``--seeds`` training seeds: trains
   the model on :func:`gscli.models._polycubes.load_polycubes` (``--per-class`` pieces per class,
   ``--test`` held out; all at random exact cube rotations) and reports test accuracy, the relative
   invariance error of the test logits under every cube symmetry of G (worst inside the last
   stage's group, mean outside it), parameters, activations per voxel grid and seconds per epoch;
3. measures forward+backward time (median of ``--repeats``) and memory at batch 8 of each variant
   in a fresh process each, with ratios against ``none``, the same model without group
   downsampling, measured in the same run. Memory is what autograd keeps for the backward pass
   (the bytes of every distinct storage saved, via ``torch.autograd.graph.saved_tensors_hooks``):
   the activation memory that dominates the peak of a training step. The CPU allocator has no
   peak statistic; on a GPU ``torch.cuda.max_memory_allocated`` would be the direct measure.

What is cut to fit minutes on a shared 2-core CPU: 9^3 grids, 2-8 fields per stage, a few epochs on
a few hundred pieces, one torch thread, 2 training seeds by default. Absolute times depend on the
machine and its load; compare ratios within one run.

Usage::

    python benchmarks/voxels.py                               # both configs, 2 seeds
    python benchmarks/voxels.py --configs configs/o-polycubes.toml --seeds 3 --epochs 3
    python benchmarks/voxels.py --json > voxels.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIGS = ["configs/oh-polycubes.toml", "configs/o-polycubes.toml"]

_COLD = """
import sys, time, json
start = time.perf_counter()
from gscli import _escnn
from gscli.models import load_config, resolve_operators
from gscli.models._escnn_nn import voxel_permutations
from gscli.build import build
config = load_config(sys.argv[1])
_escnn.load_group(config.group)
voxel_permutations(config.group, config.image_size)
for op in resolve_operators(config):
    if op is not None:
        build(op.group, subgroup=op.subgroup, out=sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

_STEP = """
import sys, time, json, statistics
import torch
torch.set_num_threads(1)
from gscli.models import load_config, build_model
config = load_config(sys.argv[1])
model = build_model(config, sys.argv[2], store=sys.argv[3], seed=0)
model.train()
s = config.image_size
x = torch.randn(8, config.in_channels, s, s, s, generator=torch.Generator().manual_seed(0))
y = torch.arange(8) % config.classes
saved = {}
def pack(t):
    saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return t
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    loss = torch.nn.functional.cross_entropy(model(x), y)
loss.backward()
model.zero_grad(set_to_none=True)
times = []
for _ in range(int(sys.argv[4])):
    t = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - t)
print(json.dumps({"seconds": statistics.median(times), "saved_mib": sum(saved.values()) / 2**20}))
"""


_FILTER = """
import sys, time, json, statistics
import torch
torch.set_num_threads(1)
from gscli.models import load_config, build_model
config = load_config(sys.argv[1])
model = build_model(config, "none", store=sys.argv[2], seed=0)
repeats = int(sys.argv[3])
s = config.image_size
x = torch.randn(8, config.in_channels, s, s, s, generator=torch.Generator().manual_seed(0))
convs, inputs = [], []
def keep(module, args, out):
    convs.append(module); inputs.append(args[0].detach().requires_grad_())
hooks = [m.register_forward_hook(keep) for m in model.modules() if type(m).__name__ == "GroupConv3d"]
with torch.no_grad():
    model.eval(); model(x)
for h in hooks:
    h.remove()

def gather(conv):  # the expansion before: advanced indexing weight[:, fiber, voxel] on every call
    order, taps = conv.order, conv.kernel_size**3
    flat = conv._flat_index.view(order, -1, taps)
    fiber, voxel = flat[:, :, :1] // taps, flat[:, :1, :] % taps
    w = conv.weight[:, fiber, voxel]
    return w.reshape(-1, w.shape[2], *(conv.kernel_size,) * 3)

def median(fn):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)

def train_step(expand):
    def run():
        loss = 0
        for conv, x in zip(convs, inputs):
            loss = loss + torch.nn.functional.conv3d(x, expand(conv), stride=conv.stride,
                                                     padding=conv.kernel_size // 2).square().mean()
        loss.backward()
        for conv in convs:
            conv.weight.grad = cached[id(conv)].grad = None
    return run

cached = {id(c): c.expand().detach().requires_grad_() for c in convs}  # a leaf: conv3d still computes its gradient
out = {"train_gather": median(train_step(gather)), "train_index_select": median(train_step(lambda c: c.expand())),
       "train_cached_filter": median(train_step(lambda c: cached[id(c)])),
       "expand_gather": median(lambda: [gather(c) for c in convs]),
       "expand_index_select": median(lambda: [c.expand() for c in convs])}
model.eval()
with torch.no_grad():
    out["eval_cached"] = median(lambda: model(x))
    for c in convs:
        c.filter = c.expand  # the same forward, expanding on every call
    out["eval_expanding"] = median(lambda: model(x))
print(json.dumps(out))
"""


def filter_timing(config_path: str, args: argparse.Namespace) -> dict[str, float]:
    """Seconds of the group convolutions at batch 8 (all of a config's, "none" variant): filter expansion costs.

    ``train_*``: forward+backward of every GroupConv3d on its real input, expanding the filter by the old
    advanced-indexing gather, by the one ``index_select``, or not at all (a precomputed filter that is
    itself a leaf requiring grad, so the convolution's weight gradient is still computed: the floor); ``expand_*``: the expansion alone; ``eval_*``: the model's eval forward with the cached
    filter against expanding on every call.
    """
    return _python(_FILTER, config_path, args.store, str(args.repeats))


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cache_timing(config_path: str) -> dict[str, float]:
    """Seconds to load G, read the voxel permutations and build the operators: cold cache, then warm."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as store:
        cold = _python(_COLD, config_path, store, env={"GSCLI_CACHE_DIR": cache})["seconds"]
    with tempfile.TemporaryDirectory() as store:
        warm = _python(_COLD, config_path, store, env={"GSCLI_CACHE_DIR": cache_dir_default()})["seconds"]
    return {"cold_seconds": round(cold, 2), "warm_seconds": round(warm, 2)}


def cache_dir_default() -> str:
    from gscli._escnn import cache_dir

    return str(cache_dir())


def train_variant(config: Any, variant: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from gscli.models import build_model
    from gscli.models._analysis import grid_transforms, prediction_invariance
    from gscli.models._polycubes import load_voxel_data
    from gscli.models._train import accuracy, predict, train

    settings = replace(config.training, seed=seed, epochs=args.epochs or config.training.epochs)
    train_set, test_set = load_voxel_data(config, per_class=args.per_class, test_size=args.test, seed=seed)
    model = build_model(config, variant, store=args.store, seed=seed)
    result = train(model, train_set, settings, rotate=False)
    model.calibrate(train_set.images, settings.batch_size)  # batch-norm statistics of the final weights
    transforms = grid_transforms(model)
    errors, agreement = prediction_invariance(model, test_set.images, transforms)
    final = set(model.block_specs[-1].nodes_in_g)
    inside = [errors[t.name] for t in transforms if t.index in final]
    outside = [errors[t.name] for t in transforms if t.index not in final]
    return {
        "test_accuracy": accuracy(predict(model, test_set.images), test_set.labels),
        "logits_invariance_inside_max": max(inside) if inside else None,
        "logits_invariance_outside_mean": statistics.fmean(outside) if outside else None,
        "prediction_agreement": agreement,
        "parameters": model.parameter_count(),
        "activations_per_grid": model.activation_count(),
        "seconds_per_epoch": result.seconds / settings.epochs,
        "final_group": str(model.final_group),
    }


def run(config_path: str, args: argparse.Namespace) -> dict[str, Any]:
    from gscli.models import VARIANTS, load_config

    config = load_config(ROOT / config_path if not Path(config_path).is_absolute() else config_path)
    out: dict[str, Any] = {"config": config.name, "group": str(config.group), "grid_size": config.image_size}
    if not args.skip_timing:
        out["escnn_cache"] = cache_timing(str(ROOT / config_path))
        out["filters"] = filter_timing(str(ROOT / config_path), args)
    if args.timing_only:
        return out
    variants: dict[str, Any] = {}
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            raise SystemExit(f"--variants: unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
        runs = [train_variant(config, variant, config.training.seed + i, args) for i in range(args.seeds)]
        summary = {key: runs[0][key] for key in ("parameters", "activations_per_grid", "final_group")}
        for key in ("test_accuracy", "logits_invariance_inside_max", "logits_invariance_outside_mean",
                    "prediction_agreement", "seconds_per_epoch"):
            values = [r[key] for r in runs if r[key] is not None]
            summary[key] = statistics.fmean(values) if values else None
            summary[key + "_per_seed"] = [r[key] for r in runs]
        if not args.skip_timing:
            step = _python(_STEP, str(ROOT / config_path), variant, args.store, str(args.repeats))
            summary["fwd_bwd_seconds_batch8"] = step["seconds"]
            summary["saved_mib_batch8"] = step["saved_mib"]
        variants[variant] = summary
    base = variants.get("none")
    for summary in variants.values() if base is not None and not args.skip_timing else ():
        summary["fwd_bwd_vs_none"] = summary["fwd_bwd_seconds_batch8"] / base["fwd_bwd_seconds_batch8"]
        summary["saved_vs_none"] = summary["saved_mib_batch8"] / base["saved_mib_batch8"]
        summary["activations_vs_none"] = summary["activations_per_grid"] / base["activations_per_grid"]
    out["variants"] = variants
    return out


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per variant")
    parser.add_argument("--epochs", type=int, default=None, help="override the configs' epochs")
    parser.add_argument("--per-class", type=int, default=200, help="tetracubes per class (8 classes; 7 for Oh)")
    parser.add_argument("--test", type=int, default=400, help="held-out pieces")
    parser.add_argument("--variants", default="antialiased,plain,none", help="comma-separated variants to train")
    parser.add_argument("--timing-only", action="store_true", help="only the escnn cache and filter timings")
    parser.add_argument("--skip-timing", action="store_true", help="accuracy only: no cache, filter or step timings")
    parser.add_argument("--repeats", type=int, default=5, help="forward+backward repeats at batch 8")
    parser.add_argument("--store", default=str(ROOT / "operators"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    results = [run(path, args) for path in args.configs]
    if args.json:
        print(json.dumps({"results": results, "seconds": time.perf_counter() - start}, indent=1))
        return
    for r in results:
        print(f"\n{r['config']} ({r['group']}, {r['grid_size']}^3)")
        cache, f = r.get("escnn_cache"), r.get("filters")
        if cache is not None:
            print(f"escnn cache cold {cache['cold_seconds']} s, warm {cache['warm_seconds']} s")
        if f is not None:
            print(f"group convolutions, batch 8, fwd+bwd: gather {f['train_gather']:.4f} s, index_select "
                  f"{f['train_index_select']:.4f} s, fixed filter {f['train_cached_filter']:.4f} s "
                  f"(gather / index_select {f['train_gather'] / f['train_index_select']:.2f}x, index_select / fixed "
                  f"{f['train_index_select'] / f['train_cached_filter']:.2f}x); expansion alone: gather "
                  f"{f['expand_gather'] * 1e3:.2f} ms, index_select {f['expand_index_select'] * 1e3:.2f} ms "
                  f"({f['expand_gather'] / f['expand_index_select']:.2f}x); eval forward: expanding "
                  f"{f['eval_expanding']:.4f} s, cached {f['eval_cached']:.4f} s "
                  f"({f['eval_expanding'] / f['eval_cached']:.2f}x)")
        if "variants" not in r:
            continue
        print(f"{'variant':<12} {'final':>5} {'acc':>6} {'inv in H':>9} {'inv out':>8} {'agree':>6} {'params':>7} "
              f"{'acts':>8} {'s/epoch':>8} {'f+b b8':>8} {'x none':>6} {'saved MiB':>9} {'x none':>6}")
        for name, v in r["variants"].items():
            print(f"{name:<12} {v['final_group']:>5} {v['test_accuracy']:6.3f} "
                  f"{_fmt(v['logits_invariance_inside_max'], '9.1e')} "
                  f"{_fmt(v['logits_invariance_outside_mean'], '8.1e')} "
                  f"{v['prediction_agreement']:6.3f} {v['parameters']:7d} {v['activations_per_grid']:8d} "
                  f"{v['seconds_per_epoch']:8.2f} {_fmt(v.get('fwd_bwd_seconds_batch8'), '8.3f')} "
                  f"{_fmt(v.get('fwd_bwd_vs_none'), '6.2f')} {_fmt(v.get('saved_mib_batch8'), '9.1f')} "
                  f"{_fmt(v.get('saved_vs_none'), '6.2f')}")
            print(f"{'':<12} accuracy per seed: {', '.join(f'{a:.3f}' for a in v['test_accuracy_per_seed'])}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
