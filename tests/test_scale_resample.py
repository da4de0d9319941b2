"""gscli.scale's resampling against an independent computation: numpy's FFT, band by band."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from gscli.errors import InputError
from gscli.scale import resample, resample_matrix


def fft_reference(n: int, m: int, h: int | None = None) -> np.ndarray:
    """Column j: numpy's FFT of the j-th unit vector, keep |k| <= (min(n, m) - 1) // 2, inverse FFT at size m.

    ``h`` overrides the band (for negative controls: a band too wide for m aliases)."""
    h = (min(n, m) - 1) // 2 if h is None else h
    out = np.zeros((m, n))
    for j in range(n):
        spectrum = np.fft.fft(np.eye(n)[j]) / n
        kept = np.zeros(m, dtype=complex)
        for k in range(-h, h + 1):
            kept[k % m] += spectrum[k % n]
        out[:, j] = np.real(np.fft.ifft(kept) * m)
    return out


@pytest.mark.parametrize("n, m", [(8, 4), (9, 3), (28, 20), (7, 12), (6, 6), (5, 5), (10, 7), (3, 8), (1, 4), (4, 1)])
def test_matrix_equals_fft_truncation(n, m):
    assert np.abs(resample_matrix(n, m) - fft_reference(n, m)).max() < 1e-12


@pytest.mark.parametrize("shape, size", [((2, 3, 12, 9), (7, 13)), ((2, 3, 6, 8), (6, 8)), ((1, 2, 5, 7), (5, 7)),
                                         ((2, 3, 10), (6,)), ((1, 2, 6, 8, 5), (4, 9, 3)), ((2, 1, 11, 10), 5)])
def test_resample_equals_kronecker_of_matrices(shape, size, rng):
    x = torch.tensor(rng.standard_normal(shape))
    sizes = size if isinstance(size, tuple) else (size,) * (len(shape) - 2)
    dense = np.ones((1, 1))
    for n, m in zip(shape[-len(sizes):], sizes):
        dense = np.kron(dense, resample_matrix(n, m))
    flat = x.reshape(*shape[: len(shape) - len(sizes)], -1).numpy()
    expected = flat @ dense.T
    y = resample(x, size)
    assert y.shape[-len(sizes):] == sizes and y.dtype == x.dtype
    assert np.abs(y.reshape(expected.shape).numpy() - expected).max() < 1e-12


# -- the identities of DESIGN §7 -------------------------------------------------------------------

def band_projector(n: int, h: int) -> np.ndarray:
    """Orthogonal projector of R^n onto the frequencies |k| <= h, from numpy's FFT (columns)."""
    mask = np.zeros(n)
    for k in range(-h, h + 1):
        mask[k % n] = 1.0
    out = np.fft.ifft(mask[:, None] * np.fft.fft(np.eye(n), axis=0), axis=0)
    assert np.abs(out.imag).max() < 1e-13  # the odd band is closed under conjugation: real operator
    return out.real


@pytest.mark.parametrize("n, m", [(8, 4), (9, 3), (12, 7), (28, 20), (28, 14), (27, 10), (10, 10), (11, 11), (5, 1)])
def test_up_down_is_orthogonal_projector_onto_the_band(n, m):
    P = resample_matrix(m, n) @ resample_matrix(n, m)
    assert np.abs(P - P.T).max() < 1e-12 and np.abs(P @ P - P).max() < 1e-12
    h = (m - 1) // 2
    assert abs(np.trace(P) - (2 * h + 1)) < 1e-12
    assert np.abs(P - band_projector(n, h)).max() < 1e-12


@pytest.mark.parametrize("n, m", [(9, 3), (12, 7), (28, 21), (13, 13), (8, 5)])
def test_down_up_is_identity_for_odd_m(n, m):
    assert np.abs(resample_matrix(n, m) @ resample_matrix(m, n) - np.eye(m)).max() < 1e-12


@pytest.mark.parametrize("n, m", [(8, 4), (12, 6), (28, 20), (27, 10), (10, 10), (9, 2)])
def test_down_up_for_even_m_is_identity_minus_nyquist(n, m):
    nyquist = np.array([(-1.0) ** i for i in range(m)])
    expected = np.eye(m) - np.outer(nyquist, nyquist) / m
    DU = resample_matrix(n, m) @ resample_matrix(m, n)
    assert np.abs(DU - expected).max() < 1e-12
    assert np.abs(DU - np.eye(m)).max() > 0.5 / m  # the Nyquist bin really is dropped (negative control)


@pytest.mark.parametrize("n, m, l", [(28, 20, 13), (28, 14, 7), (27, 12, 8), (16, 16, 6), (9, 6, 4), (30, 11, 11),
                                     (12, 5, 1)])
def test_semigroup(n, m, l):
    assert np.abs(resample_matrix(m, l) @ resample_matrix(n, m) - resample_matrix(n, l)).max() < 1e-12


def test_half_nyquist_convention_fails_the_identities():
    """Negative control: keeping ½(X[M/2] + X[−M/2]) at even M (the textbook bin) gives no projector."""
    n, m = 24, 12
    phase = np.arange(m)[:, None] / m - np.arange(n)[None, :] / n
    half = resample_matrix(n, m) + np.cos(2 * np.pi * (m // 2) * phase) / n
    P = (n / m) * half.T @ half
    assert np.abs(P @ P - P).max() > 1e-2
    assert np.abs(half @ ((n / m) * half.T) - np.eye(m)).max() > 1e-2


@pytest.mark.parametrize("n, m", [(8, 4), (9, 3), (28, 20), (7, 12), (6, 6)])
def test_operator_is_real_and_equals_complex_truncation(n, m):
    """Realness: the complex band truncation has no imaginary part (odd band = conjugation-closed)."""
    h = (min(n, m) - 1) // 2
    spectrum = np.fft.fft(np.eye(n), axis=0) / n
    kept = np.zeros((m, n), dtype=complex)
    for k in range(-h, h + 1):
        kept[k % m] = spectrum[k % n]
    full = np.fft.ifft(kept, axis=0) * m
    assert np.abs(full.imag).max() < 1e-13
    assert resample_matrix(n, m).dtype == np.float64
    assert np.abs(resample_matrix(n, m) - full.real).max() < 1e-12


# -- the group operator C_N -> C_M -----------------------------------------------------------------

@pytest.mark.parametrize("n, m", [(9, 3), (15, 5), (15, 3), (8, 4), (12, 6), (12, 4), (16, 8), (6, 2), (12, 3)])
def test_relation_to_the_group_operator(n, m):
    """For M | N, D_{N→M} is gscli's C_N → C_M operator minus the group's kept cosine at M/2 (even M)."""
    from conftest import built

    group = built(f"C{n}", f"C{m}").solution.downsample
    diff = group - resample_matrix(n, m)
    if m % 2:
        assert np.abs(diff).max() < 1e-12
        return
    # independent form of the difference: the rows on H (every R-th sample) of the rank-1 projector
    # onto the cosine at frequency M/2 of the grid of N points
    cosine = np.cos(np.pi * m * np.arange(n) / n)
    rows = (cosine[:: n // m, None] * cosine[None, :]) / (cosine @ cosine)
    assert np.abs(diff - rows).max() < 1e-12
    assert np.abs(diff).max() > 0.1 / n  # the difference is real, not rounding (negative control)


# -- resample on tensors: dtypes, dims, gradients, errors ------------------------------------------

@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-6), (torch.bfloat16, 3e-2),
                                        (torch.float16, 3e-3)])
def test_resample_dtypes(dtype, tol, rng):
    """Every dtype against the closed form of DESIGN §7, one axis at a time in numpy (D_{12→7} and U_{9→16})."""
    x = torch.tensor(rng.standard_normal((2, 3, 12, 9)))
    reference = torch.from_numpy(np.einsum("ai,bj,ncij->ncab", fft_reference(12, 7), fft_reference(9, 16),
                                           x.numpy()))
    y = resample(x.to(dtype), (7, 16))
    assert y.dtype == dtype and y.shape == (2, 3, 7, 16) and y.device == x.device
    assert (y.double() - reference).abs().max() / reference.abs().max() < tol
    # negative control: one frequency too many on the 12 -> 7 axis (band 4 aliased onto 7 points)
    wrong = np.einsum("ai,bj,ncij->ncab", fft_reference(12, 7, h=4), fft_reference(9, 16), x.numpy())
    assert (y.double() - torch.from_numpy(wrong)).abs().max() / reference.abs().max() > 10 * tol


@pytest.mark.parametrize("shape, size", [((1, 2, 7), (4,)), ((1, 2, 6), (9,)), ((1, 1, 5, 6), (4, 9)),
                                         ((1, 1, 4, 3, 5), (3, 5, 2)), ((2, 5), 3)])
def test_resample_gradcheck(shape, size, rng):
    x = torch.tensor(rng.standard_normal(shape), requires_grad=True)
    if isinstance(size, int):
        with pytest.raises(InputError):
            resample(x, size)  # an int needs (batch, channels, *spatial)
        size = (size,)
    assert torch.autograd.gradcheck(lambda t: resample(t, size), (x,))


@pytest.mark.parametrize("n, m, l", [(20, 13, 7), (16, 8, 5), (9, 9, 4)])
def test_resample_semigroup_and_down_up_on_tensors_3d(n, m, l, rng):
    x = torch.tensor(rng.standard_normal((1, 2, n, n - 1, n + 1)))
    via = resample(resample(x, (m, m, m)), (l, l, l))
    assert (via - resample(x, l)).abs().max() < 1e-12
    small = resample(x, (l, l, l))  # odd l: D·U = I; even l: I minus the Nyquist planes
    back = resample(resample(small, (n, n - 1, n + 1)), (l, l, l))
    assert (back - resample(small, (l, l, l))).abs().max() < 1e-12


@pytest.mark.parametrize("x, size, match", [
    (torch.zeros(1, 1, 4, 4, dtype=torch.complex64), 2, "real floating tensor, got dtype torch.complex64"),
    (torch.zeros(1, 1, 4, 4, dtype=torch.int64), 2, "real floating tensor, got dtype torch.int64"),
    (np.zeros((1, 1, 4, 4)), 2, "expects a torch.Tensor, got ndarray"),
    (torch.zeros(1, 1, 4, 4), 0, "size must be a positive integer, got 0"),
    (torch.zeros(1, 1, 4, 4), (3, -1), "size must be a positive integer, got -1"),
    (torch.zeros(1, 1, 4, 4), 2.5, "size must be a positive integer, got 2.5"),
    (torch.zeros(1, 1, 4, 4), True, "size must be a positive integer, got True"),
    (torch.zeros(1, 1, 4, 4), (), "must name 1 to 3 dimensions"),
    (torch.zeros(1, 1, 2, 2, 2, 2), (2, 2, 2, 2), "must name 1 to 3 dimensions"),
    (torch.zeros(4, 4), (2, 2, 2), "must name 1 to 3 dimensions"),
    (torch.zeros(1, 1), 2, "1 to 3 spatial dims, got (1, 1)"),
])
def test_resample_bad_input(x, size, match):
    with pytest.raises(InputError, match=re.escape(match)) as info:
        resample(x, size)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("n, m", [(0, 3), (3, 0), (-2, 3), (2.0, 3), (3, None)])
def test_matrix_bad_sizes(n, m):
    with pytest.raises(InputError, match="must be a positive integer") as info:
        resample_matrix(n, m)
    assert "\n" not in str(info.value)


# -- never alias the caller's tensor; empty batches ------------------------------------------------

@pytest.mark.parametrize("shape, size", [((2, 3, 9, 7), (9, 7)), ((2, 3, 8, 8), (8, 8)), ((2, 3, 9), 9),
                                         ((1, 1, 5, 5, 5), 5), ((2, 3, 9, 9), (5, 5))])
def test_resample_returns_a_new_tensor(shape, size, rng):
    """Resampling to the same size is the identity for odd sizes, and still returns a new tensor (documented):
    the result never shares storage with x, so writing into it leaves x unchanged."""
    x = torch.tensor(rng.standard_normal(shape))
    before = x.clone()
    y = resample(x, size)
    assert y is not x and y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    y.add_(1.0)
    assert torch.equal(x, before)


@pytest.mark.parametrize("shape, size, expected", [((0, 3, 12, 9), (7, 16), (0, 3, 7, 16)),
                                                   ((2, 0, 12, 12), 5, (2, 0, 5, 5)),
                                                   ((0, 1, 9), 9, (0, 1, 9)), ((0, 2, 4, 4, 4), 3, (0, 2, 3, 3, 3))])
def test_resample_empty_batches(shape, size, expected):
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    y = resample(x, size)
    assert y.shape == expected and y.dtype == x.dtype
    y.sum().backward()  # the graph holds: an empty gradient of x's shape
    assert x.grad is not None and x.grad.shape == x.shape


def test_resample_zero_spatial_size_is_refused():
    with pytest.raises(InputError, match=r"positive sizes, got \(2, 3, 0, 4\)"):
        resample(torch.zeros(2, 3, 0, 4), 3)


# -- the two ways of computing resample: dense per-axis products and the FFT ---------------------------

@pytest.mark.parametrize("method", ["dense", "fft", "auto"])
@pytest.mark.parametrize("shape, size", [((2, 3, 12, 9), (7, 16)), ((1, 2, 28, 28), (20, 20)), ((2, 1, 10), (10,)),
                                         ((1, 1, 6, 5, 7), (4, 9, 7)), ((1, 1, 9, 9), (9, 9))])
def test_both_paths_equal_the_closed_form(method, shape, size, rng):
    """DESIGN §7: D[m, n] = (1/N)(1 + 2 Σ_{k=1}^{h(M)} cos 2πk(m/M − n/N)) per axis (U = (N/M) Dᵀ up), in numpy."""
    def closed_form(n: int, m: int) -> np.ndarray:
        if m > n:
            return (m / n) * closed_form(m, n).T
        phase = np.arange(m)[:, None] / m - np.arange(n)[None, :] / n
        return (1 + 2 * sum(np.cos(2 * np.pi * k * phase) for k in range(1, (m - 1) // 2 + 1))) / n

    x = rng.standard_normal(shape)
    expected = x
    for axis, m in zip(range(x.ndim - len(size), x.ndim), size):
        expected = np.moveaxis(np.tensordot(closed_form(x.shape[axis], m), np.moveaxis(expected, axis, 0), axes=1),
                               0, axis)
    y = resample(torch.tensor(x), size, method=method).numpy()
    assert y.shape == expected.shape and np.abs(y - expected).max() < 1e-12
    # negative control: the half-Nyquist convention on a 28 -> 20 axis (keep half of bin 10) moves the result
    if shape[-1] == 28:
        phase = np.arange(20)[:, None] / 20 - np.arange(28)[None, :] / 28
        half = closed_form(28, 20) + np.cos(2 * np.pi * 10 * phase) / 28
        wrong = np.einsum("ai,bj,ncij->ncab", half, closed_form(28, 20), x)
        assert np.abs(y - wrong).max() > 1e-3


def test_auto_switches_by_size(monkeypatch, rng):
    """auto takes the dense product up to DENSE_MAX and the FFT above (counted by spying on each path)."""
    import gscli.scale._resample as module

    calls = []
    monkeypatch.setattr(module, "_dense_matrix", lambda *a, f=module._dense_matrix: calls.append("dense") or f(*a))
    real_rfftn = torch.fft.rfftn
    monkeypatch.setattr(torch.fft, "rfftn", lambda *a, **k: calls.append("fft") or real_rfftn(*a, **k))
    x = torch.tensor(rng.standard_normal((1, 1, 12, 12)))
    resample(x, 8)
    assert set(calls) == {"dense"}
    calls.clear()
    monkeypatch.setattr(module, "DENSE_MAX", 10)
    resample(x, 8)
    assert calls == ["fft"]
    with pytest.raises(InputError, match="method must be 'auto', 'dense' or 'fft', got 'matrix'"):
        resample(x, 8, method="matrix")
