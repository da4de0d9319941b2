"""The SO(2) steerable CNN of benchmarks/so2_mnist.py: with gscli's nonlinearity its logits are exactly
invariant under 90-degree turns of the image, and its hidden nonlinearity is exactly C_N-equivariant."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("escnn")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def so2_mnist():
    spec = importlib.util.spec_from_file_location("so2_mnist", ROOT / "benchmarks" / "so2_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model(so2_mnist):
    return so2_mnist.SO2Net("gscli", L=5, N=8, widths=(2, 3, 3), seed=0).eval()


@pytest.fixture(scope="module")
def images():
    x = torch.rand(6, 1, 29, 29, generator=torch.Generator().manual_seed(0))
    x[:, :, :4] = 0.0  # not rotation-symmetric by accident
    return x


def _shifted(so2_mnist, model, shift: float):
    """gscli's nonlinearity with the sample at the identity moved to the rotation by ``shift`` (a wrong element of H):
    C_N-equivariant only for shift = 0. (Moving every sample by one angle would stay equivariant: SO(2) is abelian.)"""
    from gscli.continuous import SubgroupPointwise, build_continuous

    op = build_continuous(f"SO2_L{model.L}>C{model.N}")
    rho = so2_mnist.rotation_rep(model, shift).numpy()
    down = op["downsample"].copy()
    down[0] = down[0] @ rho
    return SubgroupPointwise(down, op["upsample"], op.spec, op.subgroup_id,
                             tuple(tuple(b.irrep) for b, c in zip(op.bands, op.copies) for _ in range(c)))


def test_logits_invariant_under_90_degree_turns(so2_mnist, model, images):
    error = so2_mnist.logit_equivariance(model, images)
    assert error < 1e-5, error
    # negative control: the first nonlinearity samples one element 0.1 rad off C8, so it is no longer C4-equivariant
    wrong = so2_mnist.SO2Net("gscli", L=5, N=8, widths=(2, 3, 3), seed=0).eval()
    wrong.acts[0] = _shifted(so2_mnist, wrong, 0.1)
    assert so2_mnist.logit_equivariance(wrong, images) > 1e-4  # measured 9e-4 at seed 0


def test_hidden_nonlinearity_exactly_cn_equivariant(so2_mnist, model, images):
    h_angles = [2 * math.pi * j / model.N for j in range(1, model.N)]
    assert so2_mnist.layer_equivariance(model, images, h_angles) < 1e-5
    # under generic rotations (not in C8) it is not equivariant: the measure can see a failure
    assert so2_mnist.layer_equivariance(model, images, [0.3, 1.0]) > 1e-3
    # negative control under C8 itself: one sample 0.1 rad off the subgroup
    model_shifted = so2_mnist.SO2Net("gscli", L=5, N=8, widths=(2, 3, 3), seed=0).eval()
    model_shifted.acts[0] = _shifted(so2_mnist, model_shifted, 0.1)
    assert so2_mnist.layer_equivariance(model_shifted, images, h_angles) > 1e-3


def test_rotation_rep_is_escnn_representation(so2_mnist, model):
    """The matrices used for the SO(2) errors form a representation with rho(2 pi / N) of order N."""
    a, b = 0.7, 1.9
    rab = so2_mnist.rotation_rep(model, a) @ so2_mnist.rotation_rep(model, b)
    np.testing.assert_allclose(rab.numpy(), so2_mnist.rotation_rep(model, a + b).numpy(), atol=1e-12)
    r = so2_mnist.rotation_rep(model, 2 * math.pi / model.N)
    np.testing.assert_allclose(torch.linalg.matrix_power(r, model.N).numpy(), np.eye(2 * model.L + 1), atol=1e-12)
