"""The checks every model configuration shares: one error type and one reader per kind of value.

Each reader takes the table, the key, its default and ``where`` (the table's name, for the message),
and raises :class:`ConfigError` naming the key, the bad value and what is allowed. The planar and
voxel G-CNN configuration (:mod:`gscli.models._config`), the scale models'
(:mod:`gscli.models._scale`) and the training recipe (:mod:`gscli.models._recipe`) all read through
them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gscli.errors import GscliError

__all__ = ["ConfigError", "unknown_keys", "int_key", "float_key", "bool_key", "choice_key"]


class ConfigError(GscliError, ValueError):
    """A model configuration is malformed or describes a model that cannot be built."""

    exit_code = 2


def unknown_keys(mapping: Mapping[str, Any], allowed: Mapping[str, str], where: str) -> None:
    """Refuse keys of ``mapping`` that ``allowed`` (key -> what it means) does not list, listing the allowed ones."""
    extra = sorted(set(mapping) - set(allowed))
    if extra:
        listing = "; ".join(f"{k}: {v}" for k, v in allowed.items())
        raise ConfigError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}; "
                          f"allowed: {listing}")


def int_key(mapping: Mapping[str, Any], key: str, default: int | None, where: str, minimum: int = 1,
            meaning: str | None = None) -> int:
    """``mapping[key]`` (else ``default``; ``None``: required, ``meaning`` says what it is), an integer >= ``minimum``."""
    value = mapping.get(key, default)
    if value is None:
        raise ConfigError(f"{where}: {key!r} is required" + (f" ({meaning})" if meaning else ""))
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def float_key(mapping: Mapping[str, Any], key: str, default: float, where: str, positive: bool = True) -> float:
    """``mapping[key]`` (else ``default``), a finite number > 0 (``positive``) or >= 0."""
    value = mapping.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
            or (value <= 0 if positive else value < 0):
        raise ConfigError(f"{where}: {key} must be a {'positive' if positive else 'non-negative'} number, got {value!r}")
    return float(value)


def bool_key(mapping: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    """``mapping[key]`` (else ``default``), true or false."""
    value = mapping.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def choice_key(mapping: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str:
    """``mapping[key]`` (else the first allowed value), one of ``allowed``."""
    value = mapping.get(key, allowed[0])
    if value not in allowed:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r:.80}")
    return value
