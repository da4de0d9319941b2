"""Continuous groups: exact anti-aliased sampling of band-limited SO(2), O(2), SO(3), O(3) fields on a
finite subgroup (DESIGN §9, docs/continuous.md).

Importing this package imports neither escnn nor torch: building (``build_continuous``) needs escnn,
the runtime layers (``ContinuousDownsample``, ``ContinuousUpsample``, ``SubgroupPointwise``) need torch
only. Names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from gscli.continuous._spec import (
    CONTINUOUS_FAMILIES,
    MAX_CONTINUOUS_DIM,
    ContinuousGroupSpec,
    ContinuousOperatorSpec,
    band_dimension,
)

__all__ = [
    "CONTINUOUS_FAMILIES",
    "MAX_CONTINUOUS_DIM",
    "ContinuousGroupSpec",
    "ContinuousOperatorSpec",
    "band_dimension",
    "ContinuousOperator",
    "build_continuous",
    "write_continuous",
    "read_continuous",
    "continuous_subgroups",
    "smallest_band_limit",
    "check_continuous",
    "ContinuousDownsample",
    "ContinuousUpsample",
    "SubgroupPointwise",
]

_LAZY = {
    "ContinuousOperator": "gscli.continuous._build",
    "build_continuous": "gscli.continuous._build",
    "write_continuous": "gscli.continuous._build",
    "read_continuous": "gscli.continuous._build",
    "continuous_subgroups": "gscli.continuous._build",
    "smallest_band_limit": "gscli.continuous._build",
    "check_continuous": "gscli.continuous._checks",
    "ContinuousDownsample": "gscli.continuous._runtime",
    "ContinuousUpsample": "gscli.continuous._runtime",
    "SubgroupPointwise": "gscli.continuous._runtime",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gscli.continuous' has no attribute {name!r}")
