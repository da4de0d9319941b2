"""Build a G-CNN from a configuration: the planar model for images, the voxel model for 3-D grids."""

from __future__ import annotations

from pathlib import Path

import torch

from gscli.models._builder import GroupCNN
from gscli.models._config import ModelConfig
from gscli.models._gcnn import GCNN
from gscli.models._voxel import VoxelGCNN

__all__ = ["build_model"]


def build_model(config: ModelConfig, variant: str | None = None, store: str | Path | None = None,
                seed: int | None = None, dtype: torch.dtype = torch.float32) -> GCNN:
    """Build a :class:`GroupCNN` for ``config`` (optionally another ``variant``), seeded and in ``dtype``.

    A 3-D configuration (``grid_size``) gives a :class:`~gscli.models._voxel.VoxelGCNN` instead.

    escnn samples its kernel bases in float32 whatever the dtype, so a float64 model is exactly
    equivariant only to about 1e-8 (relative), not to float64 rounding.

    With the same ``seed``, the ``antialiased`` and ``plain`` variants get identical weights (the
    downsampling layers have no parameters).
    """
    if variant is not None:
        config = config.with_variant(variant)
    if seed is not None:
        torch.manual_seed(seed)
    model_class = VoxelGCNN if config.dimensions == 3 else GroupCNN
    return model_class(config, store=store).to(dtype)
