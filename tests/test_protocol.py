"""The MNIST-protocol metrics on classifiers whose answers are known (no escnn needed)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gscli.models._protocol import (C24_ANGLES, accuracy_no_aug, equivariance_error, exact_transforms,
                                    local_accuracy, orbit_accuracy, protocol_metrics)

SIDE, C = 9, 4  # odd images, centre pixel (4, 4)


class CentrePixel(nn.Module):
    """Reads only the centre pixel: invariant under every rotation about the centre, interpolated or not."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x[:, :, C, C])


class GlobalMoments(nn.Module):
    """Mean and mean square over the image: invariant under the exact grid transforms (pixel permutations)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.stack([x.mean(dim=(1, 2, 3)), (x**2).mean(dim=(1, 2, 3))], 1))


class RightOfCentre(nn.Module):
    """Class 1 iff the pixel right of the centre exceeds 1/2 (logit 10 (v - 1/2)); every other logit 0."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 10, dtype=x.dtype) + self.anchor
        logits[:, 1] = 10 * (x[:, 0, C, C + 1] - 0.5)
        return logits


def _data(n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, SIDE, SIDE, generator=g), torch.randint(0, 10, (n,), generator=g)


def _seeded(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in model.parameters():
        nn.init.normal_(p, std=3.0)
    return model


def test_an_exactly_invariant_model_loses_nothing_over_any_orbit() -> None:
    x, y = _data()
    model = _seeded(CentrePixel())
    plain = accuracy_no_aug(model, x, y)
    assert 0.05 < plain < 0.5  # random labels: neither trivially 0 nor 1
    # equal up to the rounding of the average (one image wrong in one transform would move it by 1.4e-4)
    assert orbit_accuracy(model, x, y) == pytest.approx(plain, abs=1e-12)
    assert orbit_accuracy(model, x, y, exact_transforms(flips=True)) == pytest.approx(plain, abs=1e-12)
    assert local_accuracy(model, x, y) == pytest.approx(plain, abs=1e-12)
    assert equivariance_error(model, x, flips=True) == 0.0


def test_moments_are_invariant_under_exact_transforms_only() -> None:
    x, _ = _data()
    model = _seeded(GlobalMoments())
    y = model(x).argmax(1)  # labels it gets right upright
    assert accuracy_no_aug(model, x, y) == 1.0
    assert orbit_accuracy(model, x, y, exact_transforms(flips=True)) == pytest.approx(1.0, abs=1e-12)
    assert equivariance_error(model, x, flips=True) < 1e-6  # float rounding of the sums
    # negative control: a 15-degree interpolated rotation is no pixel permutation, the moments move
    from gscli.models._protocol import rotate_exact

    moved = model(rotate_exact(x, 15.0))
    assert float(torch.linalg.vector_norm(moved - model(x), dim=1).mean().detach()) > 1e-3


def test_a_non_invariant_model_scores_below_its_upright_accuracy() -> None:
    x, _ = _data()
    model = _seeded(nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 10)))
    y = model(x).argmax(1)
    assert accuracy_no_aug(model, x, y) == 1.0
    assert orbit_accuracy(model, x, y) < 0.6 and orbit_accuracy(model, x, y, exact_transforms(True)) < 0.6
    assert equivariance_error(model, x, flips=False) > 0.1
    # protocol_metrics: the same numbers, each transformed test set run once
    for flips in (False, True):
        together = protocol_metrics(model, x, y, flips=flips, draws=2, seed=3)
        assert together == {"acc_no_aug": accuracy_no_aug(model, x, y), "acc_orbit_c24": orbit_accuracy(model, x, y),
                            "acc_orbit_exact": orbit_accuracy(model, x, y, exact_transforms(True)),
                            "acc_loc": local_accuracy(model, x, y, draws=2, seed=3),
                            "equivariance_error": pytest.approx(equivariance_error(model, x, flips=flips), rel=1e-12)}


def test_known_answers_of_the_pixel_right_of_centre() -> None:
    """One bright pixel at (c, c + 1), all labels 1. Exact transforms keep it there only for the identity
    and the up-down reflection; a rotation by theta samples it with bilinear weight cos(theta)(1 - |sin(theta)|),
    above 1/2 for 0 and +-15 degrees of C24 only."""
    n = 2000
    x = torch.zeros(n, 1, SIDE, SIDE)
    x[:, 0, C, C + 1] = 1.0
    y = torch.ones(n, dtype=torch.int64)
    model = RightOfCentre()
    assert accuracy_no_aug(model, x, y) == 1.0
    assert orbit_accuracy(model, x, y, exact_transforms(flips=True)) == pytest.approx(2 / 8, abs=1e-12)
    assert orbit_accuracy(model, x, y, exact_transforms(flips=False)) == pytest.approx(1 / 4, abs=1e-12)
    assert orbit_accuracy(model, x, y, C24_ANGLES) == pytest.approx(3 / 24, abs=1e-12)
    # logits [0, 5, 0...] become [0, -5, 0...] where the pixel moves: relative error 2
    assert equivariance_error(model, x, flips=False) == pytest.approx(2.0)
    assert equivariance_error(model, x, flips=True) == pytest.approx(12 / 7)
    # Acc_loc: the fraction of theta ~ U[-60, 60] degrees with cos(theta)(1 - sin|theta|) > 1/2
    from scipy.optimize import brentq

    edge = brentq(lambda t: math.cos(t) * (1 - math.sin(t)) - 0.5, 0.0, math.radians(60))
    expected = math.degrees(edge) / 60
    assert local_accuracy(model, x, y, draws=4) == pytest.approx(expected, abs=0.02)
    assert abs(local_accuracy(model, x, y, max_degrees=30, draws=4) - expected) > 0.2  # the range matters
