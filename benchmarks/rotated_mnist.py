"""Rotated MNIST with the recipe's schedule: train on randomly rotated digits, test on rotated digits.

Trains one configuration in one variant with Adam and a one-cycle learning-rate schedule (peak
``--lr``, 25% warm-up; ``--schedule cosine`` gives the training loop's cosine decay instead), each
batch rotated by uniform random angles, on the configuration's data set and split (``[training]``:
``dataset``, ``test_size``; the seed picks weights, split and angles), and tests on the held-out
digits rotated by random angles (the protocol of ``benchmarks/train.py``). Prints the loss of every
epoch and one JSON line with the test accuracy on rotated and on upright digits, the parameter
count and the training time; ``--save FILE`` appends that line to FILE.

Usage::

    python benchmarks/rotated_mnist.py configs/p4-mnist.toml --variant antialiased --save runs.jsonl
    python benchmarks/rotated_mnist.py configs/p4m-mnist.toml --variant none --epochs 10 --lr 1e-2

One torch thread by default; p4-mnist takes about 15 minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gscli.models import VARIANTS, load_config
from gscli.models._build import build_model
from gscli.models._data import load_dataset, random_rotations
from gscli.models._train import accuracy, predict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--variant", default="antialiased", choices=VARIANTS)
    parser.add_argument("--epochs", type=int, help="default: the configuration's")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the configuration's)")
    parser.add_argument("--schedule", default="onecycle", choices=("onecycle", "cosine"))
    parser.add_argument("--seed", type=int, help="default: the configuration's")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--store", help="operator store (default: $GSCLI_STORE or operators/)")
    parser.add_argument("--save", metavar="FILE", help="append the JSON line to FILE")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    settings = config.training
    epochs = args.epochs if args.epochs is not None else settings.epochs
    lr = args.lr if args.lr is not None else settings.learning_rate
    seed = args.seed if args.seed is not None else settings.seed
    train_set, test_set = load_dataset(settings.dataset, config.image_size, settings.test_size, seed)
    test_rotated = random_rotations(test_set.images, torch.Generator().manual_seed(seed + 1))
    model = build_model(config, args.variant, store=args.store, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=settings.weight_decay)
    steps = epochs * -(-len(train_set) // settings.batch_size)
    if args.schedule == "onecycle":
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.25)
    else:
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    losses, start = [], time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=generator)
        total = 0.0
        for first in range(0, len(order), settings.batch_size):
            index = order[first : first + settings.batch_size]
            loss = F.cross_entropy(model(random_rotations(train_set.images[index], generator)),
                                   train_set.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / len(train_set))
        print(f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}, {time.perf_counter() - start:.0f} s",
              file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    row = {"config": args.config, "name": config.name, "variant": args.variant, "epochs": epochs, "lr": lr,
           "schedule": args.schedule, "seed": seed, "threads": args.threads,
           "test_accuracy_rotated": accuracy(predict(model, test_rotated), test_set.labels),
           "test_accuracy_upright": accuracy(predict(model, test_set.images), test_set.labels),
           "parameters": model.parameter_count(), "train_seconds": seconds, "losses": losses}
    line = json.dumps(row)
    print(line)
    if args.save:
        with Path(args.save).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
