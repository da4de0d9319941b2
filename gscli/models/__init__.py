"""G-CNN models with group downsampling, and how equivariance errors propagate through them.

>>> from gscli.models import parse_config
>>> config = parse_config({"group": "D4", "image_size": 17, "stages": [
...     {"channels": 4, "kernel_size": 5}, {"channels": 8, "stride": 2, "subgroup": "D2"}]})
>>> config.spatial_sizes(), str(config.stages[1].subgroup)
([(17, 17), (17, 9)], 'D2')

``build_model(config, variant="plain", seed=0)`` then gives a :class:`GroupCNN` (logits of
``(batch, 1, 17, 17)`` images), and ``propagate_errors(config)`` the error analysis behind
``gscli eval-model``. Configurations and their validation need no escnn; building models needs
escnn (``pip install 'gscli[build]'``), the digits data scikit-learn (``pip install 'gscli[data]'``).

A configuration with ``kind = "scale"`` describes a scale-equivariant Fourier model instead
(:class:`ScaleModelConfig`, built by ``build_scale_model``, trained by ``train_scale``, analysed by
``scale_errors``; torch only, no escnn).
"""

from gscli.models._config import (
    VARIANTS,
    ConfigError,
    ModelConfig,
    StageConfig,
    TrainingConfig,
    check_memory,
    estimate_memory,
    resolve_operators,
    subgroup_types,
)
from gscli.models._load import load_config, parse_config

__all__ = [
    "SCALE_VARIANTS",
    "VARIANTS",
    "Block",
    "ConfigError",
    "ErrorReport",
    "GroupCNN",
    "ModelConfig",
    "StageConfig",
    "Traced",
    "TrainingConfig",
    "build_model",
    "check_memory",
    "estimate_memory",
    "grid_transforms",
    "load_config",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "parse_config",
    "plot_errors",
    "prediction_invariance",
    "propagate_errors",
    "resolve_operators",
    "ScaleCNN",
    "ScaleErrorReport",
    "ScaleModelConfig",
    "build_scale_model",
    "load_mnist_scale",
    "scale_errors",
    "train_scale",
    "subgroup_types",
    "train",
]


_LAZY = {  # escnn-, torch- or matplotlib-backed names load on first use (importing escnn takes seconds)
    "GroupCNN": "_builder", "build_model": "_build", "Block": "_gcnn", "Traced": "_gcnn", "GCNN": "_gcnn",
    "VoxelGCNN": "_voxel",
    "propagate_errors": "_analysis", "ErrorReport": "_analysis", "grid_transforms": "_analysis",
    "prediction_invariance": "_analysis", "plot_errors": "_plot", "load_digits": "_data", "train": "_train",
    "load_dataset": "_data", "load_mnist": "_data",
    # scale-equivariant Fourier models (kind = "scale")
    "SCALE_VARIANTS": "_scale", "ScaleCNN": "_scale", "ScaleModelConfig": "_scale",
    "build_scale_model": "_scale", "train_scale": "_scale", "load_mnist_scale": "_scale",
    "scale_errors": "_scale_eval", "ScaleErrorReport": "_scale_eval",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"gscli.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'gscli.models' has no attribute {name!r}")
