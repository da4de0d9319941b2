"""Read a model configuration of any kind: the planar and voxel G-CNNs (``kind = "gcnn"``, the default,
:mod:`gscli.models._config`) and the scale-equivariant Fourier models (``kind = "scale"``,
:mod:`gscli.models._scale`). Each kind parses its own table; this module only dispatches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gscli.models._validate import ConfigError

if TYPE_CHECKING:
    from gscli.models._config import ModelConfig
    from gscli.models._scale_config import ScaleModelConfig

__all__ = ["KINDS", "load_config", "parse_config"]

#: Model kinds by the value of a configuration's ``kind`` key: the module that parses each, and its
#: parser (loaded on use).
KINDS = {"gcnn": ("gscli.models._config", "parse_gcnn_config"), "scale": ("gscli.models._scale_config", "parse_scale_config")}


def parse_config(data: Mapping[str, Any], default_name: str = "model") -> ModelConfig | ScaleModelConfig:
    """Validate a configuration mapping (what ``json.load`` / ``tomllib.load`` return) with its kind's parser.

    >>> cfg = parse_config({"group": "C4", "image_size": 9,
    ...                     "stages": [{"channels": 4, "kernel_size": 5},
    ...                                {"channels": 4, "stride": 2, "rate": 2}]})
    >>> [(s.name, s.rate) for s in cfg.stages], cfg.spatial_sizes()
    ([('stage0', None), ('stage1', 2)], [(9, 9), (9, 5)])
    >>> parse_config({"kind": "cnn"})
    Traceback (most recent call last):
    ...
    gscli.models._validate.ConfigError: model: kind must be one of gcnn, scale, got 'cnn'
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a model configuration is a table/object, got {type(data).__name__}")
    kind = data.get("kind", "gcnn")
    if kind not in KINDS:
        raise ConfigError(f"model: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    from importlib import import_module

    module, parser = KINDS[kind]
    return getattr(import_module(module), parser)(data, default_name)


def load_config(path: str | Path) -> ModelConfig | ScaleModelConfig:
    """Read and validate a ``.json`` or ``.toml`` model configuration.

    Raises
    ------
    ConfigError
        The file is missing, unreadable, not JSON/TOML, or describes an invalid model (the message
        names the stage and the offending value).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConfigError(f"{path}: model configurations are .json or .toml files, got {suffix or 'no extension'!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ConfigError(f"{path}: reading TOML needs Python >= 3.11; write the configuration as JSON") from None
        decode, errors = tomllib.loads, (tomllib.TOMLDecodeError,)
    else:
        decode, errors = json.loads, (json.JSONDecodeError,)
    try:
        data = decode(text)
    except errors as exc:
        raise ConfigError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from None
    try:
        return parse_config(data, default_name=path.stem)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
