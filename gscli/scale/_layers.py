r"""Scale-equivariant layers on periodic image grids (DESIGN §7): exact under ideal downscaling.

A layer ``f`` defined for every size N of its domain is *scale-equivariant* when

.. math:: f(D_{N\to M}\,x) = D_{N'\to M'}\,f(x)

for all sizes M <= N of the domain (N' and M' the output sizes: N/p and M/p after pooling by p,
else N and M), with D the ideal downscaling of :func:`gscli.scale.resample`. It holds exactly
(to float rounding) when every output frequency k depends only on input frequencies that survive
every downscaling that keeps k. Every layer here returns feature maps in the odd band of their
size (for even sizes the Nyquist bin is zero), real tensors in, real tensors out, in the input's
dtype (float16 and bfloat16 are computed in float32).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gscli.errors import InputError
from gscli.scale._resample import _empty, band_limit, resample, resize_spectrum

__all__ = [
    "ScaleEqActivation",
    "ScaleInvariantPool",
    "SpectralConv1d",
    "SpectralConv2d",
    "SpectralConv3d",
]



def _max_pool(x: Tensor, p: int) -> Tensor:
    """Max over non-overlapping p^d windows of (batch, C, *spatial), every side a multiple of p.

    The elementwise maximum of the p^d strided sub-grids: the same values as ``max_pool2d``, about
    4x faster on CPU for small maps.
    """
    d = x.dim() - 2
    out = None
    for offsets in itertools.product(range(p), repeat=d):
        part = x[(Ellipsis,) + tuple(slice(o, None, p) for o in offsets)]
        out = part if out is None else torch.maximum(out, part)
    assert out is not None
    return out


def _positive(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_tensor(x: Any, what: str, dims: tuple[int, ...], channels: int | None = None) -> tuple[int, ...]:
    """Validate a real feature tensor ``(batch, C, *spatial)`` with ``len(spatial)`` in ``dims``; return spatial."""
    if not isinstance(x, Tensor):
        raise InputError(f"{what} expects a torch.Tensor, got {type(x).__name__}")
    if x.is_complex() or not x.is_floating_point():
        raise InputError(f"{what} expects a real floating tensor (float16, bfloat16, float32, float64), "
                         f"got dtype {x.dtype}")
    if x.dim() - 2 not in dims:
        wanted = " or ".join(str(d) for d in dims)
        raise InputError(f"{what} expects (batch, channels, *spatial) with {wanted} spatial dims, "
                         f"got shape {tuple(x.shape)}")
    if 0 in x.shape[2:]:
        raise InputError(f"{what} expects positive spatial sizes, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise InputError(f"{what} expects {channels} channels (dim 1), got shape {tuple(x.shape)}")
    return tuple(int(s) for s in x.shape[2:])


def _work(x: Tensor) -> Tensor:
    """float64 stays float64; everything else is computed in float32 (CPU FFTs have no half precision)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


# -- spectral convolution --------------------------------------------------------------------------


class _SpectralConv(nn.Module):
    dim: int = 2

    def __init__(self, in_channels: int, out_channels: int, global_modes: int, local_size: int, bias: bool = True,
                 *, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels = _positive("in_channels", in_channels)
        self.out_channels = _positive("out_channels", out_channels)
        self.global_modes = _positive("global_modes", global_modes)
        self.local_size = _positive("local_size", local_size)
        if self.local_size % 2 == 0:
            raise InputError(f"local_size must be odd (a centred support), got {local_size}")
        if self.local_size > self.global_modes:
            raise InputError(f"local_size {local_size} does not fit in the {global_modes}-point grid of "
                             f"global_modes; use local_size <= global_modes")
        shape = (self.out_channels, self.in_channels) + (self.local_size,) * self.dim
        self.weight = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(self.out_channels, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in ±1/sqrt(fan_in), fan_in = in_channels·local_size^dim (as torch's convolutions)."""
        bound = 1.0 / math.sqrt(self.in_channels * self.local_size ** self.dim)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, global_modes={self.global_modes}, "
                f"local_size={self.local_size}, bias={self.bias is not None}")

    def _phases(self, h: int, half: bool, dtype: torch.dtype, device: torch.device) -> Tensor:
        """exp(−2πi k j / G) for k in 0..h (``half``) or 0..h, −h..−1, and centred offsets j (float64 angles).

        Built once per (h, half, dtype, device) and kept (they depend on G and K only)."""
        key = (h, half, dtype, str(device))
        cached = self._phase_cache.get(key)
        if cached is not None:
            return cached
        k = np.arange(h + 1) if half else np.concatenate([np.arange(h + 1), np.arange(-h, 0)])
        j = np.arange(self.local_size) - (self.local_size - 1) // 2
        angle = -2.0 * np.pi * np.outer(k, j) / self.global_modes
        phase = torch.from_numpy(np.cos(angle) + 1j * np.sin(angle)).to(device=device, dtype=dtype)
        self._phase_cache[key] = phase
        return phase

    @property
    def _phase_cache(self) -> dict:
        cache = self.__dict__.get("_phases_kept")
        if cache is None:
            cache = self.__dict__["_phases_kept"] = {}
        return cache

    def multiplier(self, h: int, dtype: torch.dtype = torch.complex128) -> Tensor:
        r"""The Fourier multiplier :math:`W[k] = \sum_{j\in S} w[j] e^{-2\pi i k\cdot j/G}` on the band |k_i| <= h.

        Shape ``(out, in, 2h+1, ..., 2h+1, h+1)``: every axis but the last holds k = 0..h, −h..−1 (the
        ``fft`` order), the last k = 0..h (the ``rfft`` half). ``h`` is at most h(global_modes).
        Computed from the K^dim kernel one axis at a time (a small product per axis, no dense DFT).
        """
        if h > band_limit(self.global_modes):
            raise InputError(f"band {h} exceeds the band h(G) = {band_limit(self.global_modes)} of global_modes")
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        out = self.weight.to(real)
        letters = "abc"[: self.dim]
        # the last axis first: its half band (h + 1 frequencies) is the shortest, and a real kernel times
        # the phases' real and imaginary parts is two real products before the first complex tensor
        last = self._phases(h, True, dtype, self.weight.device)
        spec = "oi" + letters[:-1] + "j,kj->oi" + letters[:-1] + "k"
        out = torch.complex(torch.einsum(spec, out, last.real.contiguous()),
                            torch.einsum(spec, out, last.imag.contiguous()))
        for axis in range(self.dim - 1):
            phase = self._phases(h, False, dtype, self.weight.device)
            spec = ("oi" + letters[:axis] + "j" + letters[axis + 1:] + f",kj->oi{letters[:axis]}k{letters[axis + 1:]}")
            out = torch.einsum(spec, out, phase)
        return out

    def _cached_multiplier(self, h: int, dtype: torch.dtype) -> Tensor:
        """The multiplier, laid out for the product (every frequency axis first, then in, out).

        Without gradients (evaluation) it is kept while the kernel is unchanged (same tensor, same version
        counter, equal values); with gradients it is recomputed, so that they flow to the kernel."""
        weight = self.weight
        if torch.is_grad_enabled() and weight.requires_grad:
            return self._layout(self.multiplier(h, dtype))
        key = (h, dtype, weight.data_ptr(), weight._version, str(weight.device))
        kept = self.__dict__.get("_multiplier_kept")
        # the kernel is compared too (K^dim x in x out numbers, cheap): writes through .data keep the version
        if kept is not None and kept[0] == key and torch.equal(kept[1], weight):
            return kept[2]
        with torch.no_grad():
            value = self._layout(self.multiplier(h, dtype))
            self.__dict__["_multiplier_kept"] = (key, weight.detach().clone(), value)
        return value

    def _layout(self, w: Tensor) -> Tensor:
        """(out, in, *k) -> (*k, in, out), contiguous: a batched matrix product per frequency."""
        return w.permute(tuple(range(2, 2 + self.dim)) + (1, 0)).contiguous()

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in_channels, *n) -> (batch, out_channels, *n)``, real, in x's dtype (any sizes n).

        One ``rfftn``, per block of kept frequencies (2^(dim-1): low and high halves of every axis but the
        last) one batched complex matrix product with the multiplier, one ``irfftn``."""
        sizes = _check_tensor(x, type(self).__name__, (self.dim,), self.in_channels)
        if x.numel() == 0:  # an empty batch: FFT libraries refuse empty input
            out = _empty(x, (x.shape[0], self.out_channels) + sizes) + self.weight.sum() * 0
            if self.bias is not None:
                out = out + self.bias.to(out.dtype).reshape((1, -1) + (1,) * self.dim)
            return out
        work = _work(x)
        complex_dtype = torch.complex128 if work.dtype == torch.float64 else torch.complex64
        dims = tuple(range(2, 2 + self.dim))
        hg = band_limit(self.global_modes)
        bands = [min(band_limit(n), hg) for n in sizes]  # the kept band |k_i| <= bands[i]
        weight = self._cached_multiplier(max(bands), complex_dtype)  # (*k, in, out)
        spectrum = torch.fft.rfftn(work, dim=dims, norm="forward")
        # (b, i, *k) -> (*k, b, i): the frequency axes lead, so each block is one batched matmul
        spectrum = spectrum.permute(tuple(range(2, 2 + self.dim)) + (0, 1))
        out = spectrum.new_zeros(spectrum.shape[:-1] + (self.out_channels,))
        last = slice(0, bands[-1] + 1)
        per_axis = []
        for n, b in zip(sizes[:-1], bands[:-1]):
            blocks = [(slice(0, b + 1), slice(0, b + 1))]
            if b:
                blocks.append((slice(n - b, n), slice(2 * max(bands) + 1 - b, 2 * max(bands) + 1)))
            per_axis.append(blocks)
        for combination in itertools.product(*per_axis):
            source = tuple(src for src, _ in combination) + (last,)
            kernel = tuple(dst for _, dst in combination) + (last,)
            out[source] = torch.matmul(spectrum[source], weight[kernel])
        out = torch.fft.irfftn(out.permute((self.dim, self.dim + 1) + tuple(range(self.dim))), s=sizes, dim=dims,
                               norm="forward")
        if self.bias is not None:
            out = out + self.bias.to(out.dtype).reshape((1, -1) + (1,) * self.dim)
        return out.to(x.dtype)


class SpectralConv1d(_SpectralConv):
    """1-D :class:`SpectralConv2d`: ``(batch, in_channels, n) -> (batch, out_channels, n)``."""

    dim = 1


class SpectralConv2d(_SpectralConv):
    r"""Fourier multiplier of a learnable real kernel on a centred support: exactly scale-equivariant.

    With the forward-normalised DFT X of the input at any size N×N' and a real kernel w on the
    centred ``local_size``×``local_size`` support S (offsets −(K−1)/2..(K−1)/2) of a
    ``global_modes``×``global_modes`` grid (G):

    .. math:: Y[k] = W[k]\,X[k],\qquad W[k] = \sum_{j\in S} w[j]\,e^{-2\pi i\,k\cdot j/G},

    for k in the odd bands of both N and G (|k_i| <= ⌊(N_i−1)/2⌋ and <= ⌊(G−1)/2⌋), zero elsewhere.
    W depends on k only, so the layer commutes with every ideal downscaling; a real w gives
    W[−k] = conj W[k], so outputs are real. At N = G (odd) it is the circular convolution with w.
    Summed over input channels, plus an optional bias per output channel.

    Parameters
    ----------
    in_channels, out_channels : int
    global_modes : int
        G, the grid the kernel lives on; frequencies above ⌊(G−1)/2⌋ are cut.
    local_size : int
        K, odd, <= G: the kernel's support.
    bias : bool

    Shapes: ``(batch, in_channels, H, W) -> (batch, out_channels, H, W)``, any H, W.

    Examples
    --------
    >>> import torch
    >>> from gscli.scale import SpectralConv2d, resample
    >>> conv = SpectralConv2d(1, 4, global_modes=15, local_size=5).double()
    >>> x = torch.randn(2, 1, 20, 20, dtype=torch.float64)
    >>> bool((conv(resample(x, 13)) - resample(conv(x), 13)).abs().max() < 1e-12)
    True
    """

    dim = 2


class SpectralConv3d(_SpectralConv):
    """3-D :class:`SpectralConv2d`: ``(batch, in_channels, D, H, W) -> (batch, out_channels, D, H, W)``."""

    dim = 3


# -- small 2-D DFTs as matrix products ---------------------------------------------------------------
# FFT libraries are slow on sizes with a large prime factor (a 62x62 transform costs about 3.5x a
# 64x64 one); the ladder is full of them (2(2ρ+1)). There, two real matrix products are faster.


def _largest_prime_factor(n: int) -> int:
    largest, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return max(largest, n) if n > 1 else largest


def _prefers_matmul(size: int) -> bool:
    """Whether a size-``size`` 2-D transform is faster as matrix products (largest prime factor > 7)."""
    return _largest_prime_factor(size) > 7


_DFT_CACHE: dict[tuple[str, int, int, torch.dtype, str], Tensor] = {}


def _dft_matrix(kind: str, size: int, band: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Real matrices of the inverse / forward 2-D DFT on the grid ``size`` for frequencies |k| <= ``band``.

    ``inverse_cols`` (2(h+1), 2r): [Re X | Im X] interleaved per k2 -> [Re Y | Im Y], Y = Σ_k2 c X e^{+iθ};
    ``inverse_rows`` (r, 2(2h+1)): rows k1 in fft order, interleaved (Re, Im) -> Re Σ_k1 Y e^{+iφ};
    ``forward_cols`` (r, 2(h+1)): y -> Σ_n2 y e^{−iθ} / r, interleaved (Re, Im);
    ``forward_rows`` (r, r) complex: fft-ordered k1 rows of Σ_n1 e^{−iφ} / r.
    Built in float64 and cached per (kind, size, band, dtype, device).
    """
    key = (kind, size, band, dtype, str(device))
    cached = _DFT_CACHE.get(key)
    if cached is not None:
        return cached
    n = np.arange(size)
    k2 = np.arange(band + 1)
    if kind == "inverse_cols":
        weight = np.where(k2 == 0, 1.0, 2.0)[:, None]  # the rfft half stands for ±k2
        theta = 2.0 * np.pi * np.outer(k2, n) / size
        out = np.zeros((2 * (band + 1), 2 * size))
        out[0::2, :size], out[0::2, size:] = weight * np.cos(theta), weight * np.sin(theta)
        out[1::2, :size], out[1::2, size:] = -weight * np.sin(theta), weight * np.cos(theta)
    elif kind == "inverse_rows":
        k1 = np.concatenate([np.arange(band + 1), np.arange(-band, 0)])
        phi = 2.0 * np.pi * np.outer(n, k1) / size
        out = np.zeros((size, 2 * (2 * band + 1)))
        out[:, 0::2], out[:, 1::2] = np.cos(phi), -np.sin(phi)
    elif kind == "forward_cols":
        theta = 2.0 * np.pi * np.outer(n, k2) / size
        out = np.zeros((size, 2 * (band + 1)))
        out[:, 0::2], out[:, 1::2] = np.cos(theta) / size, -np.sin(theta) / size
    else:  # forward_rows
        k1 = np.fft.fftfreq(size, 1.0 / size)
        phi = -2.0 * np.pi * np.outer(k1, n) / size
        out = (np.cos(phi) + 1j * np.sin(phi)) / size
    tensor = torch.from_numpy(out).to(device=device, dtype=dtype)
    _DFT_CACHE[key] = tensor
    return tensor


def _downscale_matmul(spectrum: Tensor, size: int, r: int) -> Tensor:
    """irfft2 of the band |k| <= h(min(size, r)) of an rfft2 spectrum of the grid ``size``, on the grid r."""
    h = band_limit(min(size, r))
    lead = spectrum.shape[:-2]
    block = torch.cat([spectrum[..., : h + 1, : h + 1], spectrum[..., size - h:, : h + 1]], dim=-2)
    real = torch.float64 if spectrum.dtype == torch.complex128 else torch.float32
    cols = torch.view_as_real(block).reshape(-1, 2 * (h + 1)) @ _dft_matrix("inverse_cols", r, h, real, block.device)
    rows = _dft_matrix("inverse_rows", r, h, real, block.device)
    return torch.matmul(rows, cols.view(-1, 2 * (2 * h + 1), r)).view(lead + (r, r))


def _rfft2_matmul(y: Tensor, band: int) -> Tensor:
    """rfft2(y, norm="forward")[..., :band + 1] of real (…, r, r) maps, as two matrix products."""
    r = y.shape[-1]
    lead = y.shape[:-2]
    cols = y.reshape(-1, r) @ _dft_matrix("forward_cols", r, band, y.dtype, y.device)
    half = torch.view_as_complex(cols.view(-1, r, band + 1, 2))
    complex_dtype = torch.complex128 if y.dtype == torch.float64 else torch.complex64
    out = torch.matmul(_dft_matrix("forward_rows", r, band, complex_dtype, y.device), half)
    return out.view(lead + (r, band + 1))


# -- the exact pointwise nonlinearity --------------------------------------------------------------


@dataclass(frozen=True)
class _Resolution:
    """One evaluation size r of the ladder: the output frequencies it supplies, as flat indices."""

    size: int  # r: sigma is evaluated on D_{N->r} x
    source: tuple[Tensor, ...]  # per-axis indices into rfftn(pool(sigma(D_r x))) (grid r/p)
    rings: tuple[int, int]  # the rings ||k||_inf it supplies, inclusive


@dataclass(frozen=True)
class _Plan:
    resolutions: tuple[_Resolution, ...]
    target: Tensor  # flat indices into the output rfftn spectrum, concatenated in resolution order


def _frequencies(size: int, dim: int) -> np.ndarray:
    """Signed frequencies of every entry of an rfftn spectrum of the grid size^dim: (dim, *shape)."""
    full = np.fft.fftfreq(size, 1.0 / size).astype(np.int64)
    half = np.arange(size // 2 + 1, dtype=np.int64)
    return np.stack(np.meshgrid(*([full] * (dim - 1) + [half]), indexing="ij"))


def _instance_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)


class ScaleEqActivation(nn.Module):
    r"""The exact pointwise nonlinearity (and max-pooling) of DESIGN §7.

    For an input of size N^d (d = 1, 2 or 3 equal sides) and pooling p, output frequency k of the
    output (size N/p) is taken from the nonlinearity evaluated at the lowest resolution that keeps it:

    .. math:: Y[k] = \mathcal F_{r/p}\big(\mathrm{pool}_p\,\sigma(\mathrm{norm}(D_{N\to r}x))\big)[k],
              \qquad r = r(\lVert k\rVert_\infty),

    where r(ρ) is the smallest size of the ladder that is >= max(base_size, p(2ρ+1)). Ring ρ of the
    output of any ladder size M exists only if M >= p(2ρ+1), so r(ρ) <= M, and D_{M→r} D_{N→M} = D_{N→r}:
    the layer is exactly scale-equivariant on its ladder. Outputs are real and in the odd band.

    Parameters
    ----------
    activation : callable
        Applied pointwise, e.g. ``torch.relu``, ``torch.nn.functional.gelu`` or an ``nn.Module``.
    base_size : int
        The smallest input size; the low rings are evaluated at this resolution. A multiple of ``pool``.
    pool : int
        Max-pooling window and stride (1: none).
    increment : int
        The ladder (domain) is base_size, base_size + s, base_size + 2s, ... with s = lcm(increment, pool).
        increment 1 accepts every multiple of pool >= base_size; larger increments evaluate σ at fewer
        resolutions (faster) and are exact on their ladder only. Other sizes are refused.
    norm : None, "instance" or callable
        Per-resolution normalisation of D_{N→r} x before σ: ``"instance"`` (zero mean, unit variance over
        space, per sample and channel) or any map of ``(batch, C, r, ..., r)`` tensors (an ``nn.Module``
        is registered, so its parameters train); it must not depend on N to keep the layer exact.
    dft : "auto", "fft" or "matmul"
        How the per-resolution 2-D transforms are computed: FFTs, or two real matrix products (faster
        for sizes with a prime factor > 7, which FFT libraries handle slowly; "auto" picks per size).
        Same values to float rounding; 1-D and 3-D inputs always use FFTs.

    Evaluation: one ``rfftn`` of the input, then for each distinct r of the ladder one ``irfftn`` at r,
    σ, pooling and one ``rfftn`` at r/p over the whole batch (no loop over samples), one gather of all
    rings into the output spectrum and one ``irfftn``. Cost per channel about Σ_r r^d log r.

    Examples
    --------
    >>> import torch
    >>> from gscli.scale import ScaleEqActivation, resample
    >>> act = ScaleEqActivation(torch.relu, base_size=8, pool=2)
    >>> x = torch.randn(3, 4, 20, 20, dtype=torch.float64)
    >>> act(x).shape
    torch.Size([3, 4, 10, 10])
    >>> bool((act(resample(x, 14)) - resample(act(x), 7)).abs().max() < 1e-12)
    True
    """

    def __init__(self, activation: Callable[[Tensor], Tensor], base_size: int, pool: int = 1, increment: int = 1,
                 norm: str | Callable[[Tensor], Tensor] | None = None, dft: str = "auto") -> None:
        super().__init__()
        if dft not in ("auto", "fft", "matmul"):
            raise InputError(f"dft must be 'auto', 'fft' or 'matmul', got {dft!r}")
        self.dft = dft
        if not callable(activation):
            raise InputError(f"activation must be callable (e.g. torch.relu), got {activation!r}")
        self.activation = activation
        self.base_size = _positive("base_size", base_size)
        self.pool = _positive("pool", pool)
        self.increment = _positive("increment", increment)
        if self.base_size % self.pool:
            raise InputError(f"base_size {base_size} must be a multiple of pool {pool} (it is the smallest input size)")
        self.step = math.lcm(self.increment, self.pool)
        if norm is None or callable(norm):
            self.norm = norm
        elif norm == "instance":
            self.norm = _instance_norm
        else:
            raise InputError(f"norm must be None, 'instance' or a callable, got {norm!r}")
        self._plans: dict[tuple[int, int, str], _Plan] = {}

    def _matmul(self, dim: int, size: int) -> bool:
        return dim == 2 and (self.dft == "matmul" or (self.dft == "auto" and _prefers_matmul(size)))

    def extra_repr(self) -> str:
        name = getattr(self.activation, "__name__", type(self.activation).__name__)
        norm = None if self.norm is None else getattr(self.norm, "__name__", type(self.norm).__name__).lstrip("_")
        return (f"{name}, base_size={self.base_size}, pool={self.pool}, increment={self.increment}, "
                f"norm={norm}")

    def domain(self, count: int = 5) -> list[int]:
        """The first ``count`` input sizes the layer accepts."""
        return [self.base_size + i * self.step for i in range(count)]

    def accepts(self, size: int) -> bool:
        """Whether ``size`` is on the ladder (the layer's domain)."""
        return size >= self.base_size and (size - self.base_size) % self.step == 0

    def output_size(self, size: int) -> int:
        self._check_size(size)
        return size // self.pool

    def resolution(self, ring: int) -> int:
        """r(ρ): the smallest ladder size >= max(base_size, pool·(2ρ+1))."""
        need = max(self.base_size, self.pool * (2 * ring + 1))
        return self.base_size + -(-(need - self.base_size) // self.step) * self.step

    def resolutions(self, size: int) -> list[tuple[int, tuple[int, int]]]:
        """The evaluation sizes r for an input of ``size`` and the rings (lowest, highest) each supplies."""
        self._check_size(size)
        out: list[tuple[int, tuple[int, int]]] = []
        for ring in range(band_limit(size // self.pool) + 1):
            r = self.resolution(ring)
            if out and out[-1][0] == r:
                out[-1] = (r, (out[-1][1][0], ring))
            else:
                out.append((r, (ring, ring)))
        return out

    def _check_size(self, size: int) -> None:
        if not self.accepts(size):
            below = size < self.base_size
            ladder = ", ".join(map(str, self.domain())) + ", ..."
            raise InputError(
                f"{type(self).__name__}: input size {size} is {'below base_size' if below else 'not on the ladder'}"
                f" (base_size={self.base_size}, pool={self.pool}, increment={self.increment}); "
                f"sizes allowed: {ladder}")

    def _plan(self, size: int, dim: int, device: torch.device) -> _Plan:
        key = (size, dim, str(device))
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        out_size = size // self.pool
        freq = _frequencies(out_size, dim)
        ring = np.abs(freq).max(axis=0).reshape(-1)
        resolutions, targets = [], []
        for r, (low, high) in self.resolutions(size):
            rr = r // self.pool
            chosen = np.nonzero((ring >= low) & (ring <= high))[0]
            k = freq.reshape(dim, -1)[:, chosen]
            source = tuple(torch.from_numpy(np.mod(k[axis], rr)).to(device) for axis in range(dim))
            resolutions.append(_Resolution(r, source, (low, high)))
            targets.append(chosen)
        plan = _Plan(tuple(resolutions), torch.from_numpy(np.concatenate(targets)).to(device))
        self._plans[key] = plan
        return plan

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, C, n, ..., n) -> (batch, C, n/p, ..., n/p)`` for n on the ladder; real, in x's dtype."""
        sizes = _check_tensor(x, type(self).__name__, (1, 2, 3))
        if len(set(sizes)) != 1:
            raise InputError(f"{type(self).__name__} expects equal spatial sides (square images), got {sizes}")
        size, dim = sizes[0], len(sizes)
        self._check_size(size)
        if x.numel() == 0:  # an empty batch or no channels: FFT libraries refuse empty input
            return _empty(x, tuple(x.shape[:2]) + (size // self.pool,) * dim)
        plan = self._plan(size, dim, x.device)
        work = _work(x)
        dims = tuple(range(2, 2 + dim))
        spectrum = torch.fft.rfftn(work, dim=dims, norm="forward")
        pieces = []
        for res in plan.resolutions:
            grid = (res.size,) * dim
            if res.size == size and size % 2:
                # D_{N->N} is the identity for odd N; a copy, so an in-place activation or norm cannot
                # write into the caller's tensor
                low = work.clone() if work is x else work
            elif self._matmul(dim, res.size):
                low = _downscale_matmul(spectrum, size, res.size)
            else:
                low = torch.fft.irfftn(resize_spectrum(spectrum, sizes, grid), s=grid, dim=dims, norm="forward")
            if self.norm is not None:
                low = self.norm(low)
            y = self.activation(low)
            if self.pool > 1:
                y = _max_pool(y, self.pool)
            if self._matmul(dim, y.shape[-1]):
                coefficients = _rfft2_matmul(y, res.rings[1])
            else:
                coefficients = torch.fft.rfftn(y, dim=dims, norm="forward")
            pieces.append(coefficients[(Ellipsis,) + res.source])
        out_size = size // self.pool
        half = (out_size,) * (dim - 1) + (out_size // 2 + 1,)
        values = torch.cat(pieces, dim=2)
        out = values.new_zeros(values.shape[:2] + (math.prod(half),)).index_copy(2, plan.target, values)
        out = torch.fft.irfftn(out.reshape(values.shape[:2] + half), s=(out_size,) * dim, dim=dims, norm="forward")
        return out.to(x.dtype)


class ScaleInvariantPool(nn.Module):
    r"""Readout that ideal downscaling leaves unchanged: the input resampled to ``size``^d, flattened.

    :math:`f(x) = D_{N\to s} x`, and D_{M→s} D_{N→M} = D_{N→s}, so f(D_{N→M} x) = f(x) for every M >= s.
    ``size = 1`` is the spatial mean (the DC coefficient), also invariant to circular shifts.

    Shapes: ``(batch, C, n, ..., n) -> (batch, C·size^d)`` for n >= size (d = 1, 2 or 3).
    """

    def __init__(self, size: int = 1) -> None:
        super().__init__()
        self.size = _positive("size", size)

    def extra_repr(self) -> str:
        return f"size={self.size}"

    def forward(self, x: Tensor) -> Tensor:
        sizes = _check_tensor(x, type(self).__name__, (1, 2, 3))
        if min(sizes) < self.size:
            raise InputError(f"{type(self).__name__}: spatial sizes {sizes} must be >= size {self.size} "
                             "(below it the readout would upsample and stop being invariant)")
        if self.size == 1:
            return x.mean(dim=tuple(range(2, x.dim())))
        return resample(x, (self.size,) * len(sizes)).flatten(1)
