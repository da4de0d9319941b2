"""The shipped MNIST G-CNN configurations: exact where theory says, and cheap where the recipe says."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from gscli.models import VARIANTS, load_config

pytest.importorskip("escnn", reason="models are built from escnn convolutions")
from gscli.models._analysis import grid_transforms, prediction_invariance  # noqa: E402
from gscli.models._build import build_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["configs/p4-mnist.toml", "configs/p4m-mnist.toml"]


@pytest.mark.parametrize("path", SHIPPED)
def test_only_the_lifting_convolution_runs_at_full_resolution(path: str) -> None:
    # the recipe's speed: every group convolution after the lifting one runs on strided maps
    config = load_config(ROOT / path)
    sides = [side_out if stage.stride == 1 else side_in
             for (side_in, side_out), stage in zip(config.spatial_sizes(), config.stages)]
    assert sides[0] == config.image_size
    assert all(side < config.image_size for side in sides[1:]), sides


@pytest.mark.parametrize("path", SHIPPED)
@pytest.mark.parametrize("variant", VARIANTS)
def test_shipped_models_are_exactly_invariant_inside_their_last_group(path: str, variant: str,
                                                                      tmp_path: Path) -> None:
    config = load_config(ROOT / path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # operators built into the temporary store
        model = build_model(config, variant, store=tmp_path, seed=0)
    images = torch.rand(4, 1, config.image_size, config.image_size, generator=torch.Generator().manual_seed(0))
    transforms = grid_transforms(model)
    errors, _ = prediction_invariance(model, images, transforms)
    final = model.block_specs[-1].nodes_in_g
    inside = [errors[t.name] for t in transforms if t.index in final]
    outside = [errors[t.name] for t in transforms if t.index not in final]
    assert inside and max(inside) < 1e-4, errors
    if variant == "none":
        assert not outside
    else:  # negative control: transforms outside the last group do change the logits
        assert outside and max(outside) > 1e-3, errors
