"""Seeded training loops on digits (CPU-friendly, device-clean, data-parallel under torch.distributed).

The recipe comes from the configuration's ``[training]`` table (:class:`TrainingConfig`):
:func:`make_optimizer`, :func:`make_schedule` (stepped once per optimizer step) and the
augmentation of :func:`draw_augmentation` / :func:`apply_augmentation`.

:func:`train` is the original one-shot loop (``eval-model --weights trained``, the benchmarks).
:class:`Trainer` runs one epoch at a time and has a ``state_dict`` (model, optimizer, schedule,
RNG, epoch, history), which is what ``gscli train`` checkpoints; every epoch draws its batch order
and augmentation from a generator seeded by ``(seed, epoch)``, so a resumed run repeats an
uninterrupted one bit for bit.

Data parallel: when ``torch.distributed`` is initialized, every step's global batch (the same
``batch_size`` images on every rank) is split by rank (``index[rank::world]``), the augmentation is
drawn for the whole global batch and each rank applies its slice, and the model is wrapped in
``DistributedDataParallel`` (gradients averaged over ranks). Without batch norm, a step on N ranks
is therefore a step on the combined batch; batch norm statistics stay per rank.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gscli._signals import interrupt_requested
from gscli.models._config import TrainingConfig
from gscli.models._data import Digits, rotate

__all__ = ["EpochStats", "TrainResult", "Trainer", "accuracy", "apply_augmentation", "draw_augmentation",
           "make_optimizer", "make_schedule", "predict", "train"]


def make_optimizer(settings: TrainingConfig, parameters: Any) -> torch.optim.Optimizer:
    """The optimizer ``settings.optimizer`` (adam, adamw, sgd) with the learning rate and weight decay."""
    lr, decay = settings.learning_rate, settings.weight_decay
    if settings.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=decay)
    if settings.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, weight_decay=decay, momentum=settings.momentum)
    raise ValueError(f"unknown optimizer {settings.optimizer!r}")


def make_schedule(settings: TrainingConfig, optimizer: torch.optim.Optimizer,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule ``settings.schedule``, stepped once per optimizer step.

    cosine: from the learning rate to 0 over all steps; onecycle: up to the learning rate in the
    first 30% of the steps, then cosine down (``OneCycleLR``); step: times ``gamma`` every
    ``step_epochs`` epochs; constant: the learning rate throughout.
    """
    total = max(1, settings.epochs * steps_per_epoch)
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if settings.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.learning_rate, total_steps=total)
    if settings.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=settings.step_epochs * steps_per_epoch,
                                               gamma=settings.gamma)
    if settings.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(f"unknown schedule {settings.schedule!r}")


def draw_augmentation(n: int, settings: TrainingConfig, generator: torch.Generator) -> tuple[Tensor | None, Tensor | None]:
    """Random angles (radians, float64) and flip flags for ``n`` images, or None where switched off.

    ``rotation = 180`` draws uniformly from [0, 2 pi) (as :func:`~gscli.models._data.random_rotations`),
    a smaller ``rotation`` uniformly from [-rotation, rotation] degrees; ``flip`` flips each image
    left-right with probability 1/2 (after the rotation).
    """
    angles = flips = None
    if settings.rotation >= 180:
        angles = torch.rand(n, generator=generator, dtype=torch.float64) * (2 * math.pi)
    elif settings.rotation > 0:
        angles = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(settings.rotation)
    if settings.flip:
        flips = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
    return angles, flips


def apply_augmentation(images: Tensor, angles: Tensor | None, flips: Tensor | None) -> Tensor:
    """``images`` rotated by ``angles`` (bilinear, about the grid centre), then flipped where ``flips``."""
    if angles is not None:
        images = rotate(images, angles.to(images.device, images.dtype))
    if flips is not None:
        mask = flips.to(images.device).view(-1, *([1] * (images.dim() - 1)))
        images = torch.where(mask, images.flip(-1), images)
    return images


@dataclass(frozen=True)
class TrainResult:
    """``losses``: mean training loss of every epoch; ``seconds``: wall time of the loop."""

    losses: tuple[float, ...]
    seconds: float
    steps: int


def train(model: nn.Module, data: Digits, settings: TrainingConfig, *, rotate: bool = True,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``model`` in place with the recipe of ``settings`` (default: Adam, cosine decay to 0, cross entropy).

    Every batch is augmented as ``settings`` says (default: random rotations) if ``rotate``.

    Seeded by ``settings.seed`` (batch order and angles); weights are whatever the model holds.
    The model is left in eval mode.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = make_optimizer(settings, model.parameters())
    steps_per_epoch = -(-len(data) // settings.batch_size)
    schedule = make_schedule(settings, optimizer, steps_per_epoch)
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
                x = apply_augmentation(x, *draw_augmentation(len(index), settings, generator))
            loss = F.cross_entropy(model(x), data.labels[index], label_smoothing=settings.label_smoothing)
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


# -- epoch by epoch, with a state to checkpoint -----------------------------------------------


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss and accuracy (on the augmented batches, all ranks), test
    accuracy (upright test digits), the learning rate at its end and its wall time."""

    epoch: int
    loss: float
    accuracy: float
    test_accuracy: float | None
    learning_rate: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "loss": self.loss, "accuracy": self.accuracy,
                "test_accuracy": self.test_accuracy, "learning_rate": self.learning_rate, "seconds": self.seconds}


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of epoch ``epoch``'s batch order and augmentation (independent of earlier epochs)."""
    state = np.random.SeedSequence([seed, epoch, 0x67736331]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _distributed() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless torch.distributed is initialized."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Train ``model`` on ``data`` one epoch at a time with the recipe of ``settings``.

    Parameters
    ----------
    model : nn.Module
        Trained in place (moved to ``device``); wrapped in ``DistributedDataParallel`` when
        ``torch.distributed`` is initialized.
    data, test : Digits
        Training digits (augmented per ``settings``) and upright test digits (accuracy per epoch;
        optional).
    seed : int
        Seed of the batch order and augmentation (the weights are whatever the model holds).
    """

    def __init__(self, model: nn.Module, data: Digits, settings: TrainingConfig, *, seed: int,
                 test: Digits | None = None, device: str | torch.device = "cpu", augment: bool = True) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.settings, self.seed, self.augment = settings, seed, augment
        self.rank, self.world = _distributed()
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.module: nn.Module = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.module = self.model
        self.dtype = next(model.parameters()).dtype
        self.images = data.images.to(self.device, self.dtype)
        self.labels = data.labels.to(self.device)
        self.test = None if test is None else (test.images.to(self.device, self.dtype), test.labels.to(self.device))
        self.batches = [b for b in range(0, len(data), settings.batch_size)
                        if min(settings.batch_size, len(data) - b) >= self.world]  # every rank gets images
        self.optimizer = make_optimizer(settings, self.module.parameters())
        self.schedule = make_schedule(settings, self.optimizer, len(self.batches))
        self.epoch = 0
        self.history: list[EpochStats] = []

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def run_epoch(self, on_step: Callable[[int, float], None] | None = None) -> EpochStats:
        """Train one epoch; ``on_step(step, loss)`` after every step (this rank's loss)."""
        settings, start = self.settings, time.perf_counter()
        generator = epoch_generator(self.seed, self.epoch)
        order = torch.randperm(len(self.labels), generator=generator)
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss sum, correct, count
        self.module.train()
        for step, first in enumerate(self.batches):
            index = order[first : first + settings.batch_size]
            angles, flips = draw_augmentation(len(index), settings, generator) if self.augment else (None, None)
            mine = slice(self.rank, None, self.world)
            index = index[mine].to(self.device)
            x = self.images[index]
            if angles is not None or flips is not None:
                x = apply_augmentation(x, None if angles is None else angles[mine], None if flips is None else flips[mine])
            y = self.labels[index]
            logits = self.module(x)
            loss = F.cross_entropy(logits, y, label_smoothing=settings.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            with torch.no_grad():
                totals += torch.stack([loss.detach().double() * len(index),
                                       (logits.argmax(1) == y).sum().double(),
                                       torch.tensor(float(len(index)), dtype=torch.float64, device=self.device)])
            if on_step is not None:
                on_step(step, float(loss.detach()))
            if interrupt_requested():  # a Ctrl-C whose KeyboardInterrupt something swallowed (gscli._signals)
                raise KeyboardInterrupt
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(totals)
        test_accuracy = None
        if self.test is not None:
            test_accuracy = accuracy(predict(self.model, self.test[0]), self.test[1])
            self.model.train()
        self.epoch += 1
        loss_sum, correct, count = (float(v) for v in totals.cpu())
        stats = EpochStats(self.epoch, loss_sum / count, correct / count, test_accuracy,
                           float(self.optimizer.param_groups[0]["lr"]), time.perf_counter() - start)
        self.history.append(stats)
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: model (train mode), optimizer, schedule, RNG, epoch, history."""
        self.model.train()
        state = {"epoch": self.epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "schedule": self.schedule.state_dict(), "rng": {"torch": torch.get_rng_state()},
                 "history": [s.as_dict() for s in self.history]}
        if torch.cuda.is_available() and self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (a checkpoint of the same model and recipe)."""
        self.model.train()  # escnn convolutions keep their expanded filter as a buffer until the first train()
        self.model.load_state_dict(state["model"])
        self.model.to(self.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.epoch = int(state["epoch"])
        self.history = [EpochStats(**s) for s in state["history"]]
