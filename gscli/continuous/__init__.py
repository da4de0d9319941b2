"""Continuous groups: exact anti-aliased sampling of band-limited SO(2), O(2), SO(3), O(3) fields on a
finite subgroup (DESIGN §9, docs/continuous.md). One import for users; the code lives where its layer is:

- the specs (``SO3_L3>O``): :mod:`gscli.specs`;
- building, checking, summarising and drawing: the continuous operator family, :mod:`gscli.families.continuous`
  (``gscli build 'SO3_L3>O'`` goes through :func:`gscli.build.build_spec` like every family);
- what escnn is asked: :mod:`gscli._escnn_continuous`;
- the torch layers: :mod:`gscli.nn._continuous` (torch only; never escnn).

Importing this package imports neither escnn nor torch: names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from gscli.specs import (
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
    "ContinuousOperator": "gscli.families.continuous._build",
    "build_continuous": "gscli.families.continuous._build",
    "write_continuous": "gscli.families.continuous._build",
    "read_continuous": "gscli.families.continuous._build",
    "continuous_subgroups": "gscli.families.continuous._build",
    "smallest_band_limit": "gscli.families.continuous._build",
    "check_continuous": "gscli.families.continuous._checks",
    "ContinuousDownsample": "gscli.nn._continuous",
    "ContinuousUpsample": "gscli.nn._continuous",
    "SubgroupPointwise": "gscli.nn._continuous",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gscli.continuous' has no attribute {name!r}")
