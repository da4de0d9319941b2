"""The configuration of a scale-equivariant Fourier model (``kind = "scale"``): parsed and validated
here, in pure Python (the model itself: :mod:`gscli.models._scale`).

>>> from gscli.models import parse_config
>>> cfg = parse_config({"kind": "scale", "min_size": 8, "max_size": 16,
...                     "stages": [{"channels": 4, "pool": 2}, {"channels": 8}]})
>>> cfg.domain(), cfg.stage_sizes(12)
([8, 10, 12, 14, 16], [12, 6])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gscli.models._recipe import TrainingConfig
from gscli.models._validate import ConfigError, float_key, int_key, unknown_keys

__all__ = ["ACTIVATION_NAMES", "MAX_SIZE", "NORMS", "SCALE_VARIANTS", "ScaleModelConfig", "ScaleStageConfig",
           "ScaleTrainingConfig", "parse_scale_config", "estimate_scale_memory", "check_scale_memory"]

#: Activations a configuration may name (all applied pointwise; the functions: gscli.models._scale.ACTIVATIONS).
ACTIVATION_NAMES = ("relu", "gelu", "tanh", "sigmoid", "softplus")
#: ``exact``: ScaleEqActivation; ``pointwise``: the activation in space (and max_pool2d), not equivariant.
SCALE_VARIANTS = ("exact", "pointwise")

_KEYS = {
    "kind": "scale (this model kind; gcnn is the default)",
    "name": "a label for tables and plots (default: the file name)",
    "min_size": "smallest input image size (the activations' base)",
    "max_size": "largest input image size (errors are measured from it)",
    "in_channels": "channels of the input images (default 1)",
    "classes": "number of classes (default 10)",
    "activation": f"{' | '.join(ACTIVATION_NAMES)} (default relu)",
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
    if activation not in ACTIVATION_NAMES:
        raise ConfigError(f"model: activation must be one of {', '.join(ACTIVATION_NAMES)}, got {activation!r}")
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
    import torch

    from gscli.scale import ScaleEqActivation  # the ladder of resolutions each activation evaluates

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
