"""The training recipe of a model configuration: its ``[training]`` table, validated.

:class:`TrainingConfig` holds the data (data set, split, seed) and the recipe (optimizer, per-step
schedule, augmentation, loss); :func:`parse_recipe` validates the recipe keys. The G-CNN
configurations and the scale models share it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gscli.models._validate import ConfigError, bool_key, choice_key, float_key, int_key

__all__ = ["TRAINING_KEYS", "DATASETS", "RECIPE_KEYS", "OPTIMIZERS", "SCHEDULES", "TrainingConfig", "parse_recipe"]

#: The keys of a ``[training]`` table, with what each means.
TRAINING_KEYS = {
    "epochs": "passes over the training images (default 6)",
    "batch_size": "images per step (default 64)",
    "learning_rate": "learning rate (the peak of the onecycle schedule; default 3e-3)",
    "weight_decay": "weight decay (default 0)",
    "seed": "seed of weights, data split and augmentation (default 0)",
    "test_size": "digits held out for testing (default 500)",
    "dataset": "digits (scikit-learn's 8x8, resized) | mnist (5000 real 28x28 digits, zero-padded; image_size >= 29)",
    "optimizer": "adam | adamw | sgd (default adam)",
    "momentum": "SGD momentum (default 0.9; sgd only)",
    "schedule": "learning rate per step: cosine (to 0) | onecycle | step | constant (default cosine)",
    "step_epochs": "step schedule: epochs between decays (default 10)",
    "gamma": "step schedule: factor of each decay (default 0.1)",
    "rotation": "random rotation of every training image by up to this many degrees (0-180; 180: any angle, "
                "0 or false: none; default 180)",
    "flip": "random left-right flip of half the training images (default false)",
    "label_smoothing": "cross-entropy label smoothing in [0, 1) (default 0)",
}
DATASETS = ("digits", "mnist")
#: Recipe keys of gscli.models' training loop (optimizer, schedule, augmentation, loss).
RECIPE_KEYS = ("optimizer", "momentum", "schedule", "step_epochs", "gamma", "rotation", "flip", "label_smoothing")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "onecycle", "step", "constant")


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings: the recipe (optimizer, per-step schedule, augmentation, loss) and the data.

    The defaults are the original recipe: Adam, cosine decay to 0, every image rotated by a random
    angle, plain cross entropy.
    """

    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    test_size: int = 500
    dataset: str = "digits"
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: str = "cosine"
    step_epochs: int = 10
    gamma: float = 0.1
    rotation: float = 180.0
    flip: bool = False
    label_smoothing: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "weight_decay": self.weight_decay, "seed": self.seed, "test_size": self.test_size,
                "dataset": self.dataset, "optimizer": self.optimizer, "momentum": self.momentum,
                "schedule": self.schedule, "step_epochs": self.step_epochs, "gamma": self.gamma,
                "rotation": self.rotation, "flip": self.flip, "label_smoothing": self.label_smoothing}


def parse_recipe(training: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe keys of a ``[training]`` table, validated (keyword arguments of :class:`TrainingConfig`).

    >>> parse_recipe({"optimizer": "sgd", "rotation": False})["rotation"]
    0.0
    >>> parse_recipe({"schedule": "exp"})
    Traceback (most recent call last):
    ...
    gscli.models._validate.ConfigError: training: schedule must be one of cosine, onecycle, step, constant, got 'exp'
    """
    where = "training"
    rotation = training.get("rotation", 180.0)
    if isinstance(rotation, bool):
        rotation = 180.0 if rotation else 0.0
    if not isinstance(rotation, (int, float)) or not math.isfinite(rotation) or not 0 <= rotation <= 180:
        raise ConfigError(f"{where}: rotation must be true, false or a number of degrees in 0..180 (the largest "
                          f"random rotation of a training image), got {rotation!r:.80}")
    smoothing = training.get("label_smoothing", 0.0)
    if not isinstance(smoothing, (int, float)) or isinstance(smoothing, bool) or not 0 <= smoothing < 1:
        raise ConfigError(f"{where}: label_smoothing must be a number in [0, 1), got {smoothing!r:.80}")
    momentum = training.get("momentum", 0.9)
    if not isinstance(momentum, (int, float)) or isinstance(momentum, bool) or not 0 <= momentum < 1:
        raise ConfigError(f"{where}: momentum must be a number in [0, 1), got {momentum!r:.80}")
    gamma = float_key(training, "gamma", 0.1, where)
    if gamma > 1:
        raise ConfigError(f"{where}: gamma (the step schedule's decay factor) must lie in (0, 1], got {gamma!r}")
    return {"optimizer": choice_key(training, "optimizer", OPTIMIZERS, where),
            "momentum": float(momentum),
            "schedule": choice_key(training, "schedule", SCHEDULES, where),
            "step_epochs": int_key(training, "step_epochs", 10, where),
            "gamma": gamma,
            "rotation": float(rotation),
            "flip": bool_key(training, "flip", False, where),
            "label_smoothing": float(smoothing)}
