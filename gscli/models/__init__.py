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
"""

from gscli.models._config import (
    VARIANTS,
    ConfigError,
    ModelConfig,
    StageConfig,
    TrainingConfig,
    check_memory,
    estimate_memory,
    load_config,
    parse_config,
    resolve_operators,
    subgroup_types,
)

__all__ = [
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
    "subgroup_types",
    "train",
]


_LAZY = {  # escnn-, torch- or matplotlib-backed names load on first use (importing escnn takes seconds)
    "GroupCNN": "_builder", "build_model": "_builder", "Block": "_builder", "Traced": "_builder",
    "propagate_errors": "_analysis", "ErrorReport": "_analysis", "grid_transforms": "_analysis",
    "prediction_invariance": "_analysis", "plot_errors": "_plot", "load_digits": "_data", "train": "_train",
    "load_dataset": "_data", "load_mnist": "_data",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"gscli.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'gscli.models' has no attribute {name!r}")
