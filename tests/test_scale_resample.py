"""gscli.scale's resampling against an independent computation: numpy's FFT, band by band."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gscli.scale import resample, resample_matrix


def fft_reference(n: int, m: int) -> np.ndarray:
    """Column j: numpy's FFT of the j-th unit vector, keep |k| <= (min(n, m) - 1) // 2, inverse FFT at size m."""
    h = (min(n, m) - 1) // 2
    out = np.zeros((m, n))
    for j in range(n):
        spectrum = np.fft.fft(np.eye(n)[j]) / n
        kept = np.zeros(m, dtype=complex)
        for k in range(-h, h + 1):
            kept[k % m] = spectrum[k % n]
        out[:, j] = np.real(np.fft.ifft(kept) * m)
    return out


@pytest.mark.parametrize("n, m", [(8, 4), (9, 3), (28, 20), (7, 12), (6, 6), (5, 5), (10, 7), (3, 8), (1, 4), (4, 1)])
def test_matrix_equals_fft_truncation(n, m):
    assert np.abs(resample_matrix(n, m) - fft_reference(n, m)).max() < 1e-12


@pytest.mark.parametrize("shape, size", [((2, 3, 12, 9), (7, 13)), ((2, 3, 10), (6,)), ((1, 2, 6, 8, 5), (4, 9, 3)), ((2, 1, 11, 10), 5)])
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
