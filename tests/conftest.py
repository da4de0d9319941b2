"""Shared fixtures: operators are built once per test session (escnn's groups take seconds cold)."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@lru_cache(maxsize=None)
def built(group: str, subgroup: str):
    from gscli.build import build_operator

    return build_operator(group, subgroup=subgroup)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20250101)
