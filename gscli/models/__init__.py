"""G-CNN models with group downsampling, and how equivariance errors propagate through them.

>>> from gscli.models import load_config, build_model     # doctest: +SKIP
>>> config = load_config("configs/p4m-digits.toml")       # doctest: +SKIP
>>> model = build_model(config, variant="plain", seed=0)  # doctest: +SKIP

Configurations and their validation need only the standard library; building models needs escnn
(``pip install 'gscli[build]'``), the digits data scikit-learn (``pip install 'gscli[data]'``).
"""

from gscli.models._config import (
    VARIANTS,
    ConfigError,
    ModelConfig,
    StageConfig,
    TrainingConfig,
    load_config,
    parse_config,
    resolve_operators,
    subgroup_types,
)

__all__ = [
    "VARIANTS",
    "ConfigError",
    "GroupCNN",
    "ModelConfig",
    "StageConfig",
    "TrainingConfig",
    "build_model",
    "load_config",
    "parse_config",
    "resolve_operators",
    "subgroup_types",
]


def __getattr__(name: str):  # escnn-backed names load on first use (importing escnn takes seconds)
    if name in ("GroupCNN", "build_model", "Block", "Traced"):
        from gscli.models import _builder

        return getattr(_builder, name)
    raise AttributeError(f"module 'gscli.models' has no attribute {name!r}")
