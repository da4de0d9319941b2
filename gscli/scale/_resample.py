"""Ideal (anti-aliased) resolution change on periodic grids, per DESIGN §7 (numpy and torch only).

The periodic grid Z_N is the cyclic group C_N. With the forward-normalised DFT
X[k] = (1/N) Σ_n x[n] e^{-2πikn/N}, the coefficients of a signal do not depend on its resolution,
so changing the resolution is truncating (or zero-padding) the spectrum. The band kept between
sizes N and M is the *odd* band

    B = {k : |k| <= h},   h = ⌊(min(N, M) − 1) / 2⌋,

so for an even size the Nyquist bin is dropped: it is the one frequency whose cosine and sine
cannot both be represented, and keeping half of it breaks the semigroup and scale equivariance.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from gscli.errors import InputError

if TYPE_CHECKING:  # torch is imported where tensors are handled: resample_matrix is numpy only
    import torch

__all__ = ["DENSE_MAX", "band_limit", "resample_matrix", "resample", "resize_spectrum"]


def band_limit(size: int) -> int:
    """Highest frequency h(M) = ⌊(M − 1)/2⌋ of the odd band kept at size M."""
    return (int(size) - 1) // 2


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def resample_matrix(n: int, m: int) -> np.ndarray:
    """The real (m, n) operator that resamples a periodic signal of length ``n`` to length ``m``.

    For ``m <= n`` it is the ideal downscaling D_{n→m}:
    ``D[i, j] = (1/n) (1 + 2 Σ_{k=1}^{h(m)} cos 2πk (i/m − j/n))``; for ``m > n`` the upscaling
    U_{n→m} = (m/n) D_{m→n}ᵀ (zero-padding the spectrum). Both keep the odd band |k| <= h(min(n, m)).

    For m | n this is gscli's group operator C_n → C_m (``gscli.build.build_operator``) for odd m;
    for even m the group operator also keeps the cosine at frequency m/2 (it needs rank m to
    reconstruct from m samples), and the two differ by exactly the rows on C_m of the rank-1
    projector onto that cosine.

    Parameters
    ----------
    n, m : int
        Input and output lengths (positive).

    Returns
    -------
    numpy.ndarray
        float64, shape (m, n).

    Examples
    --------
    >>> import numpy as np
    >>> D = resample_matrix(6, 3)                 # every other sample of the low-passed signal
    >>> np.allclose(D @ np.ones(6), np.ones(3))   # constants pass unchanged
    True
    >>> np.allclose(D @ resample_matrix(3, 6), np.eye(3))   # D·U = I for odd m
    True
    """
    n, m = _check_size("n", n), _check_size("m", m)
    if m > n:
        return (m / n) * resample_matrix(m, n).T
    k = np.arange(1, band_limit(m) + 1, dtype=np.float64)
    phase = np.arange(m, dtype=np.float64)[:, None] / m - np.arange(n, dtype=np.float64)[None, :] / n
    return (1.0 + 2.0 * np.cos(2.0 * np.pi * k[:, None, None] * phase[None]).sum(axis=0)) / n


def _band_index(size: int, h: int, device: torch.device) -> torch.Tensor:
    """Indices of frequencies 0..h and −h..−1 in a length-``size`` FFT."""
    import torch

    return torch.cat([torch.arange(0, h + 1, device=device), torch.arange(size - h, size, device=device)])


#: Largest side (input or output) resampled by dense per-axis matrices; above it, rfftn/irfftn.
#: Chosen from ``benchmarks/resample.py`` (see docs/scale.md): the separable dense product is faster up to here.
DENSE_MAX = 256

_MATRICES: dict[tuple[int, int, object, str], torch.Tensor] = {}


def _dense_matrix(n: int, m: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """:func:`resample_matrix` (n -> m) as a tensor, built in O(nm) memory (one frequency at a time), kept."""
    import torch

    key = (n, m, dtype, str(device))
    kept = _MATRICES.get(key)
    if kept is not None:
        return kept
    if m > n:
        matrix = (m / n) * _dense_matrix(m, n, torch.float64, torch.device("cpu")).T
    else:
        phase = 2.0 * np.pi * (np.arange(m, dtype=np.float64)[:, None] / m - np.arange(n, dtype=np.float64)[None, :] / n)
        total = np.ones((m, n))
        for k in range(1, band_limit(m) + 1):
            total += 2.0 * np.cos(k * phase)
        matrix = torch.from_numpy(total / n)
    matrix = matrix.to(device=device, dtype=dtype).contiguous()
    if len(_MATRICES) > 256:
        _MATRICES.clear()
    _MATRICES[key] = matrix
    return matrix


def resample(x: torch.Tensor, size: int | tuple[int, ...], method: str = "auto") -> torch.Tensor:
    """Resample the last dimensions of a real tensor to ``size`` with the ideal low-pass of DESIGN §7.

    Equal to applying :func:`resample_matrix` along each resampled axis (a Kronecker product), for
    any sizes, divisors or not, in one ``rfftn``/``irfftn`` pair.

    Parameters
    ----------
    x : torch.Tensor
        Real floating tensor, on any device; gradients flow through.
    size : int or tuple of int
        A tuple resamples the last ``len(size)`` dimensions (1 to 3). An int resamples every
        dimension after the first two (batch, channels) to that size.
    method : "auto", "dense" or "fft"
        ``dense``: one matrix product per resampled axis with :func:`resample_matrix`; ``fft``: one
        ``rfftn``/``irfftn`` pair. ``auto`` (default) takes the dense product when every input and output
        side is at most :data:`DENSE_MAX` (measured faster there), else the FFT. Same values to rounding.

    Returns
    -------
    torch.Tensor
        Same dtype and device as ``x``, with the resampled dimensions of the new sizes. Always a new
        tensor, never ``x`` itself or a view of it, even where resampling is the identity (the same odd
        size): writing into the result leaves ``x`` unchanged. An empty ``x`` (batch or channels 0)
        gives an empty result of the new shape.
    """
    import torch

    if not isinstance(x, torch.Tensor):
        raise InputError(f"resample expects a torch.Tensor, got {type(x).__name__}")
    if x.is_complex() or not x.is_floating_point():
        raise InputError(f"resample expects a real floating tensor, got dtype {x.dtype}")
    if isinstance(size, (tuple, list)):
        sizes = tuple(_check_size("size", s) for s in size)
        if not 1 <= len(sizes) <= 3 or len(sizes) > x.dim():
            raise InputError(f"size {tuple(size)!r} must name 1 to 3 dimensions, at most x.dim() = {x.dim()}")
    else:
        spatial = x.dim() - 2
        if not 1 <= spatial <= 3:
            raise InputError("an int size needs x of shape (batch, channels, *spatial) with 1 to 3 spatial dims, "
                             f"got {tuple(x.shape)}")
        sizes = (_check_size("size", size),) * spatial
    dims = tuple(range(x.dim() - len(sizes), x.dim()))
    if any(x.shape[d] == 0 for d in dims):
        raise InputError(f"resample: the resampled dimensions of x must have positive sizes, got {tuple(x.shape)}")
    if x.numel() == 0:  # an empty batch or no channels: nothing to transform (FFT libraries refuse empty input)
        return _empty(x, x.shape[: x.dim() - len(sizes)] + sizes)
    if method not in ("auto", "dense", "fft"):
        raise InputError(f"method must be 'auto', 'dense' or 'fft', got {method!r:.80}")
    if tuple(x.shape[d] for d in dims) == sizes and all(s % 2 for s in sizes):
        return x.clone()  # the odd band of an odd size is everything: the identity, as a new tensor
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    old = tuple(x.shape[d] for d in dims)
    if method == "dense" or (method == "auto" and max(old + sizes) <= DENSE_MAX):
        out = work
        for axis, n, m in zip(dims, old, sizes):
            if n == m and n % 2:
                continue
            matrix = _dense_matrix(n, m, work.dtype, work.device)
            if axis == x.dim() - 1:
                out = out @ matrix.T
            else:
                out = torch.matmul(matrix, out.movedim(axis, -2)).movedim(-2, axis)
        return out.to(x.dtype) if out is not x else out.clone()
    spectrum = torch.fft.rfftn(work, dim=dims, norm="forward")
    spectrum = resize_spectrum(spectrum, tuple(x.shape[d] for d in dims), sizes)
    out = torch.fft.irfftn(spectrum, s=sizes, dim=dims, norm="forward")
    return out.to(x.dtype)


def _empty(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """An empty tensor of ``shape`` like ``x``, attached to x's graph (its gradient is empty too)."""
    return x.new_zeros(shape) + x.sum() * 0


def resize_spectrum(spectrum: torch.Tensor, sizes: tuple[int, ...], new_sizes: tuple[int, ...]) -> torch.Tensor:
    """Move an ``rfftn`` spectrum (forward norm) of the grid ``sizes`` to the grid ``new_sizes``.

    The last ``len(sizes)`` dimensions of ``spectrum`` are the transformed ones (the last one halved,
    as ``rfftn`` returns it). Frequencies |k_i| <= h(min(sizes[i], new_sizes[i])) are kept, the rest of
    the new spectrum is zero: ``irfftn(resize_spectrum(rfftn(x), n, m), s=m)`` is :func:`resample`.
    One zero tensor and one copy per block of kept frequencies (2^(d-1) blocks: low and high halves).
    """
    sizes, new_sizes = tuple(sizes), tuple(new_sizes)
    lead = spectrum.shape[: spectrum.dim() - len(sizes)]
    bands = [band_limit(min(n, m)) for n, m in zip(sizes, new_sizes)]
    if sizes == new_sizes and all(n % 2 for n in sizes):
        return spectrum
    shape = lead + tuple(new_sizes[:-1]) + (new_sizes[-1] // 2 + 1,)
    out = spectrum.new_zeros(shape)
    per_axis = []
    for n, m, h in zip(sizes[:-1], new_sizes[:-1], bands[:-1]):
        blocks = [(slice(0, h + 1), slice(0, h + 1))]
        if h:
            blocks.append((slice(n - h, n), slice(m - h, m)))
        per_axis.append(blocks)
    last = (slice(0, bands[-1] + 1),)
    for combination in itertools.product(*per_axis):
        source = (Ellipsis,) + tuple(src for src, _ in combination) + last
        target = (Ellipsis,) + tuple(dst for _, dst in combination) + last
        out[target] = spectrum[source]
    return out
