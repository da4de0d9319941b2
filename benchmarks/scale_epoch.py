"""Seconds per training epoch of the scale models against the plain CNN, measured in CPU time of one thread.

On a shared machine wall-clock time says more about the other processes than about the model, so each
training step is timed with ``time.process_time`` (one thread: the CPU seconds are the seconds the step
would take on an idle core). Per model: the mean over ``--steps`` forward + backward + AdamW steps at
every size of the MNIST-scale domain drawn in turn (8..28, as training draws them), times the number
of steps of an epoch (``--train`` digits / batch). Ratios against the plain CNN are from the same run.

    python benchmarks/scale_epoch.py                         # small config, paper config, CNN
    python benchmarks/scale_epoch.py --models small,cnn --steps 21
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mnist_scale import PlainCNN  # noqa: E402

from gscli.models import build_scale_model, load_config  # noqa: E402
from gscli.scale import resample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"small": ROOT / "configs" / "scale-mnist.toml", "paper": ROOT / "configs" / "scale-mnist-paper.toml"}


def cpu_seconds_per_step(model, sizes: list[int], batch: int, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(0))
    total = 0.0
    for step in range(steps + 1):
        x = resample(images, sizes[step % len(sizes)])
        start = time.process_time()
        optimizer.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        optimizer.step()
        if step:  # the first step warms up (plans, caches)
            total += time.process_time() - start
    return total / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="small,paper,cnn")
    parser.add_argument("--steps", type=int, default=21, help="timed steps (sizes 8..28 in turn)")
    parser.add_argument("--train", type=int, default=4000, help="training digits per epoch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = list(range(8, 29))
    sizes = sizes[::2] + sizes[1::2]  # alternate small and large when fewer steps than sizes are timed
    rows = []
    for name in args.models.split(","):
        if name == "cnn":
            torch.manual_seed(0)
            model, batch = PlainCNN(), load_config(CONFIGS["small"]).training.batch_size
        else:
            config = load_config(CONFIGS[name])
            model, batch = build_scale_model(config), config.training.batch_size
        per_step = cpu_seconds_per_step(model, sizes, batch, args.steps)
        steps = -(-args.train // batch)
        rows.append({"model": name, "parameters": sum(p.numel() for p in model.parameters()), "batch": batch,
                     "cpu_seconds_per_step": per_step, "cpu_seconds_per_epoch": per_step * steps})
    cnn = next((r for r in rows if r["model"] == "cnn"), None)
    for r in rows:
        r["ratio_to_cnn"] = r["cpu_seconds_per_epoch"] / cnn["cpu_seconds_per_epoch"] if cnn else None
    if args.json:
        print(json.dumps({"train": args.train, "steps": args.steps, "rows": rows}, indent=2))
        return
    print(f"CPU seconds per epoch ({args.train} digits, sizes 8..28, one thread; ratio against the plain CNN)")
    for r in rows:
        ratio = f"{r['ratio_to_cnn']:.1f}x" if r["ratio_to_cnn"] is not None else "-"
        print(f"{r['model']:>6} {r['parameters']:>9} params  batch {r['batch']:>4}  {r['cpu_seconds_per_step']:7.2f} s/step"
              f"  {r['cpu_seconds_per_epoch']:8.0f} s/epoch  {ratio:>7}", flush=True)


if __name__ == "__main__":
    main()
