"""A short, seeded training loop on randomly rotated digits (CPU-friendly)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gscli.models._config import TrainingConfig
from gscli.models._data import Digits, random_rotations

__all__ = ["TrainResult", "accuracy", "predict", "train"]


@dataclass(frozen=True)
class TrainResult:
    """``losses``: mean training loss of every epoch; ``seconds``: wall time of the loop."""

    losses: tuple[float, ...]
    seconds: float
    steps: int


def train(model: nn.Module, data: Digits, settings: TrainingConfig, *, rotate: bool = True,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``model`` in place with Adam (cosine learning-rate decay to 0) and cross entropy.

    Every batch is randomly rotated if ``rotate``.

    Seeded by ``settings.seed`` (batch order and angles); weights are whatever the model holds.
    The model is left in eval mode.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(data) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs * steps_per_epoch)
    dtype = next(model.parameters()).dtype
    losses, steps, start = [], 0, time.perf_counter()
    model.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(data), generator=generator)
        total, count = 0.0, 0
        for first in range(0, len(order), settings.batch_size):
            index = order[first : first + settings.batch_size]
            x = data.images[index].to(dtype)
            if rotate:
                x = random_rotations(x, generator)
            loss = F.cross_entropy(model(x), data.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
            count += len(index)
            steps += 1
        losses.append(total / count)
        if log is not None:
            log(f"epoch {epoch + 1}/{settings.epochs}: loss {losses[-1]:.4f}")
    model.eval()
    return TrainResult(tuple(losses), time.perf_counter() - start, steps)


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """Logits ``(n, classes)`` of ``images`` in eval mode, in batches."""
    model.eval()
    dtype = next(model.parameters()).dtype
    return torch.cat([model(images[i : i + batch_size].to(dtype)) for i in range(0, len(images), batch_size)])


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of rows whose largest logit is the label."""
    return float((logits.argmax(dim=1) == labels).to(torch.float64).mean())
