"""Exact scale equivariance of gscli.scale's layers on the full band, against independent numpy references."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gscli.errors import InputError
from gscli.scale import (
    ScaleEqActivation,
    ScaleInvariantPool,
    SpectralConv1d,
    SpectralConv2d,
    SpectralConv3d,
    resample,
    resample_matrix,
)

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative Frobenius error over the whole tensor (every frequency: Nyquist and top ring included)."""
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


def equivariance_error(layer, x: torch.Tensor, m: int, pool: int = 1) -> float:
    """‖f(D_{N→M} x) − D_{N'→M'} f(x)‖ / ‖D f(x)‖ with N' = N/pool, M' = M/pool."""
    d = x.dim() - 2
    return rel(layer(resample(x, (m,) * d)), resample(layer(x), (m // pool,) * d))


# -- SpectralConv ----------------------------------------------------------------------------------

def numpy_spectral_conv(conv: SpectralConv2d, x: np.ndarray) -> np.ndarray:
    """Full complex plane with numpy: W[k] from the kernel by definition, Y = W X on the kept band, ifft2."""
    w = conv.weight.detach().double().numpy()
    b = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(w.shape[0])
    n1, n2 = x.shape[-2:]
    G, K = conv.global_modes, conv.local_size
    X = np.fft.fft2(x) / (n1 * n2)
    Y = np.zeros((x.shape[0], w.shape[0], n1, n2), dtype=complex)
    offsets = np.arange(K) - (K - 1) // 2
    hg = (G - 1) // 2
    for k1 in range(-min((n1 - 1) // 2, hg), min((n1 - 1) // 2, hg) + 1):
        for k2 in range(-min((n2 - 1) // 2, hg), min((n2 - 1) // 2, hg) + 1):
            phase = np.exp(-2j * np.pi * (k1 * offsets[:, None] + k2 * offsets[None, :]) / G)
            W = (w * phase).sum(axis=(-2, -1))  # (out, in)
            Y[:, :, k1 % n1, k2 % n2] = X[:, :, k1 % n1, k2 % n2] @ W.T
    y = np.fft.ifft2(Y) * (n1 * n2)
    assert np.abs(y.imag).max() < 1e-12 * max(1.0, np.abs(y.real).max())  # real kernel -> Hermitian product
    return y.real + b[None, :, None, None]


@pytest.mark.parametrize("shape, G, K", [((2, 3, 12, 12), 9, 3), ((1, 2, 11, 8), 15, 5), ((2, 1, 7, 7), 6, 5),
                                         ((1, 2, 20, 13), 8, 1)])
def test_spectral_conv_equals_full_plane_numpy(shape, G, K, rng):
    conv = SpectralConv2d(shape[1], 4, G, K).double()
    x = rng.standard_normal(shape)
    y = conv(torch.tensor(x))
    assert y.shape == (shape[0], 4) + shape[2:] and y.dtype == torch.float64
    assert np.abs(y.detach().numpy() - numpy_spectral_conv(conv, x)).max() < 1e-12


def test_spectral_conv_is_circular_convolution_at_the_global_size(rng):
    """At N = G (odd) the multiplier is the DFT of the centred kernel: circular convolution with it."""
    conv = SpectralConv2d(2, 3, global_modes=11, local_size=5, bias=False).double()
    x = torch.tensor(rng.standard_normal((2, 2, 11, 11)))
    w = conv.weight.detach()
    padded = F.pad(x, (2, 2, 2, 2), mode="circular")
    expected = F.conv2d(padded, w.flip(-1, -2))  # conv2d correlates: flip for a convolution
    assert (conv(x) - expected).abs().max() < 1e-12
    assert (conv(x) - F.conv2d(padded, w)).abs().max() > 1e-2  # unflipped (negative control)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n, sizes", [(24, [23, 20, 16, 12, 9, 8, 3, 2, 1]), (21, [20, 14, 7, 6, 1])])
def test_spectral_conv_scale_equivariance(dtype, n, sizes, rng):
    conv = SpectralConv2d(3, 4, global_modes=14, local_size=5).to(dtype)
    x = torch.tensor(rng.standard_normal((2, 3, n, n)), dtype=dtype)
    for m in sizes:
        assert equivariance_error(conv, x, m) < TOL[dtype], (n, m)


def test_spectral_conv_1d_and_3d(rng):
    conv1 = SpectralConv1d(2, 3, global_modes=10, local_size=3).double()
    x1 = torch.tensor(rng.standard_normal((2, 2, 17)))
    conv3 = SpectralConv3d(1, 2, global_modes=6, local_size=3).double()
    x3 = torch.tensor(rng.standard_normal((1, 1, 8, 9, 7)))
    for m in (16, 11, 4):
        assert equivariance_error(conv1, x1, m) < 1e-12
    for m in (6, 5):
        assert equivariance_error(conv3, x3, m) < 1e-12
    # 1-D against the 2-D layer on (n, 1) images: a kernel with one non-zero row is a 1-D kernel
    conv2 = SpectralConv2d(2, 3, global_modes=10, local_size=3).double()
    with torch.no_grad():
        conv2.weight.zero_()
        conv2.weight[:, :, :, 1] = conv1.weight
        conv2.bias.copy_(conv1.bias)
    assert (conv2(x1[..., None]).squeeze(-1) - conv1(x1)).abs().max() < 1e-12


def test_spectral_conv_gradcheck(rng):
    conv = SpectralConv2d(2, 2, global_modes=6, local_size=3).double()
    x = torch.tensor(rng.standard_normal((1, 2, 5, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(conv, (x,), fast_mode=True)
    weight = conv.weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda w: torch.func.functional_call(conv, {"weight": w, "bias": conv.bias}, (x.detach(),)), (weight,),
        fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype, rng):
    """Half-precision inputs against the same layer in float64 (its own rounding only: the rounding of the
    half-precision input and output, at most a few units of its epsilon relative to the output)."""
    x = torch.tensor(rng.standard_normal((2, 3, 12, 12)), dtype=torch.float64)
    conv = SpectralConv2d(3, 2, 9, 3)
    act = ScaleEqActivation(torch.relu, base_size=6, pool=2)
    tol = 4 * torch.finfo(dtype).eps
    for layer in (conv, act):
        y = layer(x.to(dtype))
        assert y.dtype == dtype
        reference = layer.double()(x.to(dtype).double())
        assert rel(y, reference) < tol
        # negative control: an input off by 8 eps (relative) trips the tolerance
        assert rel(layer(x.to(dtype).double() * (1 + 8 * torch.finfo(dtype).eps)), reference) > tol
        layer.float()


# -- the activation against an independent numpy reference -----------------------------------------

def numpy_activation(x: np.ndarray, act, base: int, pool: int, step: int) -> np.ndarray:
    """DESIGN §7 term by term: for every output frequency k, σ at r(‖k‖∞), full complex numpy FFTs."""
    n = x.shape[-1]
    no = n // pool
    h = (no - 1) // 2
    cache: dict[int, np.ndarray] = {}
    Y = np.zeros(x.shape[:2] + (no, no), dtype=complex)
    for k1 in range(-h, h + 1):
        for k2 in range(-h, h + 1):
            need = max(base, pool * (2 * max(abs(k1), abs(k2)) + 1))
            r = base + math.ceil((need - base) / step) * step
            if r not in cache:
                D = resample_matrix(n, r)
                low = act(np.einsum("ij,bcjk,lk->bcil", D, x, D))
                rr = r // pool
                pooled = low.reshape(x.shape[:2] + (rr, pool, rr, pool)).max(axis=(3, 5))
                cache[r] = np.fft.fft2(pooled) / rr**2
            rr = r // pool
            Y[..., k1 % no, k2 % no] = cache[r][..., k1 % rr, k2 % rr]
    y = np.fft.ifft2(Y) * no**2
    assert np.abs(y.imag).max() < 1e-12
    return y.real


@pytest.mark.parametrize("n, base, pool, increment", [(13, 5, 1, 1), (12, 4, 1, 1), (12, 4, 2, 1), (18, 6, 3, 1),
                                                      (20, 8, 1, 4), (16, 4, 2, 3), (9, 9, 1, 1)])
def test_activation_equals_numpy_reference(n, base, pool, increment, rng):
    act = ScaleEqActivation(torch.relu, base_size=base, pool=pool, increment=increment)
    x = rng.standard_normal((2, 3, n, n))
    expected = numpy_activation(x, lambda t: np.maximum(t, 0), base, pool, math.lcm(increment, pool))
    assert np.abs(act(torch.tensor(x)).numpy() - expected).max() < 1e-12


# -- exact scale equivariance of the activation ------------------------------------------------------

CASES = [  # (activation kwargs, N, smaller sizes M: odd, even, divisors and non-divisors of N, down to base)
    (dict(base_size=5), 21, [20, 17, 14, 12, 7, 6, 5]),
    (dict(base_size=4), 24, [23, 18, 16, 12, 9, 8, 5, 4]),
    (dict(base_size=6, pool=2), 24, [22, 18, 16, 12, 10, 8, 6]),
    (dict(base_size=6, pool=3), 21, [18, 15, 12, 9, 6]),
    (dict(base_size=8, increment=4), 28, [24, 20, 16, 12, 8]),
    (dict(base_size=7, increment=3), 22, [19, 16, 13, 10, 7]),
    (dict(base_size=4, pool=2, increment=3), 22, [16, 10, 4]),
    (dict(base_size=6, norm="instance"), 19, [18, 15, 11, 8, 6]),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kwargs, n, sizes", CASES)
def test_activation_is_exactly_scale_equivariant(kwargs, n, sizes, dtype, rng):
    act = ScaleEqActivation(torch.relu, **kwargs)
    pool = kwargs.get("pool", 1)
    x = torch.tensor(rng.standard_normal((2, 3, n, n)), dtype=dtype)
    y = act(x)
    assert y.dtype == dtype and y.shape == (2, 3, n // pool, n // pool)
    for m in sizes:
        assert equivariance_error(act, x, m, pool) < TOL[dtype], (kwargs, n, m)


@pytest.mark.parametrize("kwargs, n, sizes", CASES[:4])
def test_plain_relu_is_not_scale_equivariant(kwargs, n, sizes, rng):
    """Negative control: the same check on relu (+ max-pool) in space fails at every smaller size."""
    pool = kwargs.get("pool", 1)

    def plain(t: torch.Tensor) -> torch.Tensor:
        y = torch.relu(t)
        return F.max_pool2d(y, pool) if pool > 1 else y

    x = torch.tensor(rng.standard_normal((2, 3, n, n)))
    for m in sizes:
        if m == n:
            continue
        assert equivariance_error(plain, x, m, pool) > 1e-2, (kwargs, n, m)


class _RingTooHigh(ScaleEqActivation):
    """A subtly wrong layer: every ring evaluated two sizes above its resolution (one would be
    harmless: sizes 2ρ+1 and 2ρ+2 keep the same band)."""

    def resolution(self, ring: int) -> int:
        return super().resolution(ring) + 2


def test_wrong_ring_resolution_fails_only_on_the_full_band(rng):
    """The check compares every frequency: dropping the top ring (as the published metric did) hides the error."""
    x = torch.tensor(rng.standard_normal((2, 3, 21, 21)))
    wrong = _RingTooHigh(torch.relu, base_size=5)
    for m in (20, 13, 9):
        assert equivariance_error(wrong, x, m) > 1e-3
    m = 13
    a, b = wrong(resample(x, m)), resample(wrong(x), m)
    h = (m - 1) // 2 - 1  # below the top ring
    assert rel(resample(a, 2 * h + 1), resample(b, 2 * h + 1)) < 1e-12


def test_activation_1d_and_3d(rng):
    act1 = ScaleEqActivation(F.gelu, base_size=4, pool=2)
    x1 = torch.tensor(rng.standard_normal((2, 3, 30)))
    for m in (28, 22, 14, 6, 4):
        assert equivariance_error(act1, x1, m, 2) < 1e-12
    x = torch.tensor(rng.standard_normal((1, 2, 20)))  # channels stay apart (the published 1-D code mixed them)
    assert (act1(x)[:, 1:] - act1(x[:, 1:])).abs().max() < 1e-15
    act3 = ScaleEqActivation(torch.relu, base_size=3)
    x3 = torch.tensor(rng.standard_normal((1, 2, 9, 9, 9)))
    for m in (8, 5, 3):
        assert equivariance_error(act3, x3, m) < 1e-12


def test_activation_with_a_learnable_norm_module(rng):
    norm = torch.nn.InstanceNorm2d(3, affine=True).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-0.5, 0.5)
    act = ScaleEqActivation(torch.relu, base_size=6, pool=2, norm=norm)
    assert any(p is norm.weight for p in act.parameters())
    x = torch.tensor(rng.standard_normal((2, 3, 20, 20)))
    for m in (18, 12, 6):
        assert equivariance_error(act, x, m, 2) < 1e-12


def test_activation_gradcheck(rng):
    act = ScaleEqActivation(torch.tanh, base_size=2, pool=2, norm="instance")
    x = torch.tensor(rng.standard_normal((1, 2, 6, 6)), requires_grad=True)
    assert torch.autograd.gradcheck(act, (x,), fast_mode=True)
    act1 = ScaleEqActivation(F.gelu, base_size=3, increment=2)
    x1 = torch.tensor(rng.standard_normal((2, 2, 7)), requires_grad=True)
    assert torch.autograd.gradcheck(act1, (x1,), fast_mode=True)


def test_ladder_and_resolutions():
    act = ScaleEqActivation(torch.relu, base_size=8, pool=2, increment=3)
    assert act.step == 6 and act.domain(4) == [8, 14, 20, 26]
    assert [act.accepts(n) for n in (8, 12, 14, 15, 20, 6)] == [True, False, True, False, True, False]
    # rings 0..h(10)=4 of a 20 input: need max(8, 2(2ρ+1)) = 8, 8, 10, 14, 18 -> ladder sizes 8, 8, 14, 14, 20
    assert act.resolutions(20) == [(8, (0, 1)), (14, (2, 3)), (20, (4, 4))]
    plain = ScaleEqActivation(torch.relu, base_size=5)
    assert [r for r, _ in plain.resolutions(12)] == [5, 7, 9, 11]  # rings 0..5 of 12 (Nyquist dropped)


# -- readout and a small stack ----------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 3, 4])
def test_invariant_pool(size, rng):
    pool = ScaleInvariantPool(size)
    x = torch.tensor(rng.standard_normal((2, 3, 17, 17)))
    y = pool(x)
    assert y.shape == (2, 3 * size * size)
    for m in (16, 11, 7, size):
        assert rel(pool(resample(x, m)), y) < 1e-12
    assert rel(pool(x[..., 1:, 1:]), y) > 1e-3  # cropping is not downscaling (negative control)
    # independent reference: D_{17→size} of DESIGN §7 on both axes, in numpy
    d = resample_matrix(17, size)
    reference = np.einsum("ai,bj,ncij->ncab", d, d, x.numpy()).reshape(2, -1)
    assert rel(y, torch.from_numpy(reference)) < 1e-13


class Stack(torch.nn.Module):
    def __init__(self, exact: bool = True) -> None:
        super().__init__()
        self.conv1 = SpectralConv2d(1, 4, global_modes=24, local_size=5)
        self.act1 = ScaleEqActivation(torch.relu, base_size=8, pool=2) if exact else None
        self.conv2 = SpectralConv2d(4, 6, global_modes=12, local_size=3)
        self.act2 = ScaleEqActivation(torch.relu, base_size=4) if exact else None
        self.pool = ScaleInvariantPool(1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = self.conv1(x)
        out.append(x)
        x = self.act1(x) if self.act1 is not None else F.max_pool2d(torch.relu(x), 2)
        out.append(x)
        x = self.conv2(x)
        out.append(x)
        x = self.act2(x) if self.act2 is not None else torch.relu(x)
        out.append(x)
        out.append(self.pool(x))
        return out


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_stack_is_exactly_scale_equivariant(dtype, rng):
    torch.manual_seed(0)
    model = Stack().to(dtype)
    x = torch.tensor(rng.standard_normal((3, 1, 28, 28)), dtype=dtype)
    full = model.features(x)
    for m in (26, 20, 16, 14, 10, 8):
        small = model.features(resample(x, m))
        for i, (a, b) in enumerate(zip(small, full)):
            expected = b if b.dim() == 2 else resample(b, (a.shape[-1],) * 2)
            assert rel(a, expected) < TOL[dtype], (m, i)
    plain = Stack(exact=False).to(dtype)
    plain.load_state_dict(model.state_dict())
    small, full = plain.features(resample(x, 20)), plain.features(x)
    assert rel(small[-1], full[-1]) > 1e-3  # negative control: the same weights with relu in space


# -- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, x, match", [
    (lambda: ScaleEqActivation(torch.relu, 8, pool=2), torch.zeros(1, 1, 13, 13), "input size 13 is not on the ladder"),
    (lambda: ScaleEqActivation(torch.relu, 8), torch.zeros(1, 1, 6, 6), "input size 6 is below base_size"),
    (lambda: ScaleEqActivation(torch.relu, 8, increment=4), torch.zeros(1, 1, 14, 14),
     "sizes allowed: 8, 12, 16, 20, 24, ..."),
    (lambda: ScaleEqActivation(torch.relu, 4), torch.zeros(1, 1, 8, 9), "equal spatial sides"),
    (lambda: ScaleEqActivation(torch.relu, 4), torch.zeros(1, 1, 8, 8, dtype=torch.complex64),
     "real floating tensor (float16, bfloat16, float32, float64), got dtype torch.complex64"),
    (lambda: ScaleEqActivation(torch.relu, 4), torch.zeros(1, 1, 8, 8, dtype=torch.int32), "got dtype torch.int32"),
    (lambda: ScaleEqActivation(torch.relu, 4), torch.zeros(8, 8), "with 1 or 2 or 3 spatial dims, got shape (8, 8)"),
    (lambda: SpectralConv2d(3, 2, 8, 3), torch.zeros(1, 2, 8, 8), "expects 3 channels (dim 1), got shape (1, 2, 8, 8)"),
    (lambda: SpectralConv2d(3, 2, 8, 3), torch.zeros(1, 3, 8), "with 2 spatial dims, got shape (1, 3, 8)"),
    (lambda: SpectralConv2d(1, 2, 8, 3), np.zeros((1, 1, 8, 8)), "expects a torch.Tensor, got ndarray"),
    (lambda: ScaleInvariantPool(5), torch.zeros(1, 1, 4, 4), "spatial sizes (4, 4) must be >= size 5"),
])
def test_bad_inputs(make, x, match):
    layer = make()
    with pytest.raises(InputError, match=re.escape(match)) as info:
        layer(x)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("make, match", [
    (lambda: ScaleEqActivation(torch.relu, 9, pool=2), "base_size 9 must be a multiple of pool 2"),
    (lambda: ScaleEqActivation(torch.relu, 0), "base_size must be an integer >= 1, got 0"),
    (lambda: ScaleEqActivation(torch.relu, 4, increment=0), "increment must be an integer >= 1, got 0"),
    (lambda: ScaleEqActivation("relu", 4), "activation must be callable"),
    (lambda: ScaleEqActivation(torch.relu, 4, norm="batch"), "norm must be None, 'instance' or a callable"),
    (lambda: SpectralConv2d(1, 2, 8, 4), "local_size must be odd"),
    (lambda: SpectralConv2d(1, 2, 4, 5), "local_size 5 does not fit"),
    (lambda: SpectralConv2d(0, 2, 8, 3), "in_channels must be an integer >= 1, got 0"),
    (lambda: ScaleInvariantPool(0), "size must be an integer >= 1, got 0"),
])
def test_bad_construction(make, match):
    with pytest.raises(InputError, match=re.escape(match)) as info:
        make()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-13), (torch.float32, 1e-6)])
def test_matmul_and_fft_transforms_agree(dtype, tol, rng):
    """The 2-D DFTs as matrix products (sizes with large prime factors) equal the FFT path."""
    x = torch.tensor(rng.standard_normal((2, 3, 26, 26)), dtype=dtype)
    for kwargs in (dict(base_size=6), dict(base_size=6, pool=2), dict(base_size=8, increment=3)):
        fft = ScaleEqActivation(torch.relu, dft="fft", **kwargs)(x)
        for dft in ("matmul", "auto"):
            other = ScaleEqActivation(torch.relu, dft=dft, **kwargs)(x)
            assert rel(other, fft) < tol, (kwargs, dft)


# -- the caller's tensor is never modified or aliased -----------------------------------------------

@pytest.mark.parametrize("n, base, pool", [(5, 5, 1), (9, 5, 1), (8, 4, 1), (10, 6, 2)])
def test_in_place_activation_leaves_the_input_unchanged(n, base, pool, rng):
    """σ = ReLU(inplace=True): the residual act(x) + x must equal the out-of-place layer's, and x must not move."""
    x = torch.tensor(rng.standard_normal((2, 3, n, n)))
    before = x.clone()
    expected = ScaleEqActivation(torch.relu, base_size=base, pool=pool)(x)
    y = ScaleEqActivation(torch.nn.ReLU(inplace=True), base_size=base, pool=pool)(x)
    assert torch.equal(x, before)
    assert rel(y, expected) < 1e-15
    assert y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


def test_layers_do_not_alias_their_input(rng):
    x = torch.tensor(rng.standard_normal((2, 3, 9, 9)))
    for layer in (SpectralConv2d(3, 3, 9, 3), ScaleEqActivation(torch.relu, base_size=9), ScaleInvariantPool(9),
                  ScaleInvariantPool(1)):
        y = layer(x)
        assert y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


# -- empty batches and no channels ----------------------------------------------------------------

@pytest.mark.parametrize("make, shape, expected", [
    (lambda: SpectralConv1d(3, 4, 9, 3), (0, 3, 9), (0, 4, 9)),
    (lambda: SpectralConv2d(3, 4, 9, 3), (0, 3, 10, 10), (0, 4, 10, 10)),
    (lambda: SpectralConv3d(3, 4, 5, 3), (0, 3, 6, 6, 6), (0, 4, 6, 6, 6)),
    (lambda: SpectralConv2d(3, 4, 9, 3), (2, 3, 10, 10), (2, 4, 10, 10)),  # control: a full batch
    (lambda: ScaleEqActivation(torch.relu, base_size=8, pool=2), (0, 3, 12, 12), (0, 3, 6, 6)),
    (lambda: ScaleEqActivation(torch.relu, base_size=8, pool=2), (2, 0, 12, 12), (2, 0, 6, 6)),
    (lambda: ScaleEqActivation(torch.relu, base_size=5), (0, 2, 7), (0, 2, 7)),
    (lambda: ScaleEqActivation(torch.relu, base_size=4), (0, 2, 5, 5, 5), (0, 2, 5, 5, 5)),
    (lambda: ScaleInvariantPool(3), (0, 3, 12, 12), (0, 27)),
    (lambda: ScaleInvariantPool(3), (2, 0, 12, 12), (2, 0)),
    (lambda: ScaleInvariantPool(1), (0, 3, 12, 12), (0, 3)),
])
def test_empty_batches_give_empty_results(make, shape, expected):
    layer = make()
    x = torch.zeros(shape, requires_grad=True)
    y = layer(x)
    assert y.shape == expected and y.dtype == x.dtype
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_spectral_conv_zero_spatial_size_is_refused():
    with pytest.raises(InputError, match=r"positive spatial sizes, got shape \(1, 3, 0, 4\)"):
        SpectralConv2d(3, 4, 9, 3)(torch.zeros(1, 3, 0, 4))


# -- what a mutation audit found untested ------------------------------------------------------------

@pytest.mark.parametrize("cls, dim", [(SpectralConv1d, 1), (SpectralConv2d, 2), (SpectralConv3d, 3)])
def test_spectral_conv_init_matches_torch_fan_in(cls, dim):
    """Weights uniform in ±1/sqrt(in·K^dim), as torch's Conv{dim}d with the same kernel: the bound and the
    variance bound²/3 (a bound of 1/sqrt(in·K) would be sqrt(K^(dim-1)) times wider, variance K^(dim-1) times)."""
    torch.manual_seed(0)
    cin, k = 6, 5
    conv = cls(cin, 40, 9, k)
    torch.manual_seed(0)
    reference = getattr(torch.nn, f"Conv{dim}d")(cin, 40, k)
    bound = 1.0 / math.sqrt(cin * k**dim)
    ref_bound = 1.0 / math.sqrt(reference.weight[0].numel())  # torch's kaiming_uniform(a=√5) bound, independently
    assert math.isclose(bound, ref_bound)
    for tensor in (conv.weight, conv.bias):
        assert float(tensor.detach().abs().max()) <= bound
    n = conv.weight.numel()
    variance = float(conv.weight.detach().double().var())
    # 5 standard errors of a sample variance of a uniform (var of x² is 4 bound^4 / 45)
    assert abs(variance - bound**2 / 3) < 5 * math.sqrt(4 * bound**4 / 45 / n)
    assert float(conv.weight.detach().abs().max()) > 0.95 * bound  # the bound is reached, not just respected


def _forward_accepts(layer: ScaleEqActivation, n: int) -> bool:
    try:
        layer(torch.zeros(1, 1, n, n))
    except InputError:
        return False
    return True


def test_accepts_agrees_with_forward_and_the_ladder():
    """accepts(n) is what forward accepts, and both are the ladder base + i·lcm(increment, pool), over many
    combinations: a step of increment·pool (not their lcm) refuses e.g. 8 + 4 for pool 2, increment 4."""
    for base, pool, increment in [(8, 2, 4), (6, 2, 2), (6, 3, 2), (8, 4, 6), (4, 2, 3), (9, 3, 6), (6, 1, 4)]:
        layer = ScaleEqActivation(torch.relu, base_size=base, pool=pool, increment=increment)
        for n in range(1, base + 25):
            on_ladder = n >= base and (n - base) % increment == 0 and (n - base) % pool == 0
            assert layer.accepts(n) == on_ladder, (base, pool, increment, n)
            if n <= base + 13:
                assert _forward_accepts(layer, n) == on_ladder, (base, pool, increment, n)


def test_plan_cache_is_per_dimension(rng):
    """One layer used on 2-D, then 1-D, then 3-D inputs of the same side gives what fresh layers give."""
    layer = ScaleEqActivation(torch.relu, base_size=5)
    for shape in [(1, 2, 8, 8), (1, 2, 8), (1, 2, 8, 8, 8), (1, 2, 8, 8)]:
        x = torch.tensor(rng.standard_normal(shape))
        assert rel(layer(x), ScaleEqActivation(torch.relu, base_size=5)(x)) < 1e-15


@pytest.mark.parametrize("shape", [(2, 3, 9), (2, 3, 9, 9), (2, 3, 5, 5, 5)])
def test_instance_norm_equals_torch_instance_norm(shape, rng):
    """With one resolution (base_size = n, odd) the layer is σ(norm(x)): compare norm with F.instance_norm
    (biased variance; the unbiased one is off by sqrt(N/(N-1)))."""
    x = torch.tensor(rng.standard_normal(shape)) * 3 + 1
    n = shape[-1]
    layer = ScaleEqActivation(lambda t: t, base_size=n, norm="instance")
    assert rel(layer(x), F.instance_norm(x)) < 1e-12


# -- the fast spectral convolution against the dense definition (float64) ------------------------------

def dense_spectral_conv(conv, x: np.ndarray) -> np.ndarray:
    """Any dimension, with numpy: W[k] = Σ_j w[j] e^{-2πi k·j/G} summed over the whole K^d support for every kept
    k (|k_i| <= min(h(n_i), h(G))), Y = W X, full complex inverse FFT; no rfft half, no blocks, no caching."""
    w = conv.weight.detach().double().numpy()
    d, G, K = conv.dim, conv.global_modes, conv.local_size
    sizes = x.shape[2:]
    X = np.fft.fftn(x, axes=tuple(range(2, 2 + d))) / np.prod(sizes)
    Y = np.zeros((x.shape[0], w.shape[0]) + sizes, dtype=complex)
    offsets = np.stack(np.meshgrid(*([np.arange(K) - (K - 1) // 2] * d), indexing="ij"))  # (d, K, ..., K)
    bands = [min((n - 1) // 2, (G - 1) // 2) for n in sizes]
    for k in itertools.product(*(range(-b, b + 1) for b in bands)):
        phase = np.exp(-2j * np.pi * np.tensordot(np.array(k, dtype=float), offsets, axes=1) / G)
        W = (w * phase).reshape(w.shape[:2] + (-1,)).sum(axis=-1)
        index = (slice(None), slice(None)) + tuple(ki % n for ki, n in zip(k, sizes))
        Y[index] = X[index] @ W.T
    y = np.fft.ifftn(Y, axes=tuple(range(2, 2 + d))) * np.prod(sizes)
    b = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(w.shape[0])
    return y.real + b.reshape((1, -1) + (1,) * d)


@pytest.mark.parametrize("cls, shape, G, K", [
    (SpectralConv1d, (2, 3, 17), 10, 3), (SpectralConv1d, (1, 2, 8), 15, 5),
    (SpectralConv2d, (2, 3, 28, 28), 28, 5), (SpectralConv2d, (1, 2, 20, 7), 15, 5), (SpectralConv2d, (1, 2, 6, 9), 9, 3),
    (SpectralConv3d, (1, 2, 8, 9, 7), 6, 3), (SpectralConv3d, (1, 1, 5, 10, 4), 11, 5),
])
@pytest.mark.parametrize("grad", [True, False])
def test_fast_spectral_conv_equals_the_dense_definition(cls, shape, G, K, grad, rng):
    """Training (gradients on: the multiplier recomputed) and evaluation (no gradients: the kept multiplier)."""
    conv = cls(shape[1], 3, G, K).double()
    x = rng.standard_normal(shape)
    with torch.set_grad_enabled(grad):
        for _ in range(2):  # the second call in evaluation reuses the kept multiplier
            y = conv(torch.tensor(x))
            assert np.abs(y.detach().numpy() - dense_spectral_conv(conv, x)).max() < 1e-12


def test_kept_multiplier_follows_the_weights(rng):
    """In evaluation the multiplier is kept between calls; any change of the kernel must be seen: through the
    optimizer (version counter), through .data (no version change), and by loading a state dict."""
    conv = SpectralConv2d(2, 3, 9, 3).double()
    x = torch.tensor(rng.standard_normal((2, 2, 12, 12)))
    with torch.no_grad():
        before = conv(x)
        conv.weight.mul_(2.0)
        assert rel(conv(x) - conv.bias[None, :, None, None], 2 * (before - conv.bias[None, :, None, None])) < 1e-12
        conv.weight.data[0, 0, 1, 1] += 1.0
        after = conv(x)
        assert np.abs(after.numpy() - dense_spectral_conv(conv, x.numpy())).max() < 1e-12
        fresh = SpectralConv2d(2, 3, 9, 3).double()
        conv.load_state_dict(fresh.state_dict())
        assert np.abs(conv(x).numpy() - fresh(x).numpy()).max() < 1e-12
        assert rel(after, conv(x)) > 1e-2  # the control: the weights did change the output


@pytest.mark.parametrize("cls, dim", [(SpectralConv1d, 1), (SpectralConv2d, 2), (SpectralConv3d, 3)])
def test_multiplier_equals_its_definition(cls, dim):
    conv = cls(2, 3, 11, 5).double()
    h = 4
    W = conv.multiplier(h).detach().numpy()
    w = conv.weight.detach().numpy()
    offsets = np.stack(np.meshgrid(*([np.arange(5) - 2] * dim), indexing="ij"))
    full = list(range(h + 1)) + list(range(-h, 0))
    for k in itertools.product(*([full] * (dim - 1) + [range(h + 1)])):
        phase = np.exp(-2j * np.pi * np.tensordot(np.array(k, dtype=float), offsets, axes=1) / 11)
        index = (slice(None), slice(None)) + tuple(ki % (2 * h + 1) for ki in k[:-1]) + (k[-1],)
        assert np.abs(W[index] - (w * phase).reshape(w.shape[:2] + (-1,)).sum(-1)).max() < 1e-12
