"""SpectralConv1d/2d/3d against the published spectral convolution, timed in one run.

The published layer (Rahman & Yeh, NeurIPS 2023; DESIGN §7) keeps the low modes of ``rfft2``: two
corner blocks of ``modes x modes`` complex weights (positive and negative first-axis frequencies),
multiplies them into the spectrum with ``einsum`` and returns ``irfft2``. The reference below is our own
implementation of that approach, with ``modes = h + 1`` so that it keeps the band gscli's layer keeps
(|k| <= h, h = (N - 1) // 2 for ``global_modes = N``): the same channels, the same frequencies.

Measured: forward in evaluation (no gradients) and forward + backward (training), batch 16, 16 -> 16
channels, float32, one thread (``--threads``), at 28x28 and 64x64 (and 1-D / 3-D for completeness).
Each line prints the ratio gscli / reference: below 1 is faster. Times are CPU seconds of the process
(``time.process_time``: with one thread, what a call takes on an idle core; wall-clock time on a shared
machine measures the other processes), the best of three interleaved rounds of medians.

Usage::

    python benchmarks/spectral_conv.py
    python benchmarks/spectral_conv.py --sizes 28,64 --repeats 30 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from gscli.scale import SpectralConv1d, SpectralConv2d, SpectralConv3d


class PublishedSpectralConv2d(nn.Module):
    """The published approach: complex weights on the two corner blocks of the rfft2 spectrum, einsum, irfft2."""

    def __init__(self, in_channels: int, out_channels: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (in_channels * out_channels)
        shape = (in_channels, out_channels, modes, modes)
        self.weights1 = nn.Parameter(scale * torch.rand(shape, dtype=torch.cfloat))
        self.weights2 = nn.Parameter(scale * torch.rand(shape, dtype=torch.cfloat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n1, n2 = x.shape
        m = self.modes
        x_ft = torch.fft.rfft2(x, norm="forward")
        out_ft = torch.zeros(b, self.weights1.shape[1], n1, n2 // 2 + 1, dtype=torch.cfloat)
        out_ft[:, :, :m, :m] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m, :m], self.weights1)
        out_ft[:, :, -m:, :m] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m:, :m], self.weights2)
        return torch.fft.irfft2(out_ft, s=(n1, n2), norm="forward")


class PublishedSpectralConvNd(nn.Module):
    """The same approach in 1-D or 3-D (2^(d-1) corner blocks)."""

    def __init__(self, in_channels: int, out_channels: int, modes: int, dim: int) -> None:
        super().__init__()
        self.modes, self.dim = modes, dim
        blocks = 2 ** (dim - 1)
        shape = (blocks, in_channels, out_channels) + (modes,) * dim
        self.weights = nn.Parameter(torch.rand(shape, dtype=torch.cfloat) / (in_channels * out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, 2 + self.dim))
        m = self.modes
        x_ft = torch.fft.rfftn(x, dim=dims, norm="forward")
        out_ft = torch.zeros((x.shape[0], self.weights.shape[2]) + x_ft.shape[2:], dtype=torch.cfloat)
        letters = "xyz"[: self.dim]
        spec = f"bi{letters},io{letters}->bo{letters}"
        corners = [[slice(0, m), slice(-m, None)]] * (self.dim - 1)
        import itertools

        for index, combination in enumerate(itertools.product(*corners)):
            block = (slice(None), slice(None)) + tuple(combination) + (slice(0, m),)
            out_ft[block] = torch.einsum(spec, x_ft[block], self.weights[index])
        return torch.fft.irfftn(out_ft, s=x.shape[2:], dim=dims, norm="forward")


def timed(fn, repeats: int) -> float:
    """Median CPU time of ``repeats`` calls after three warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def compare(dim: int, n: int, batch: int, channels: int, local: int, repeats: int) -> dict:
    torch.manual_seed(0)
    h = (n - 1) // 2
    ours = {1: SpectralConv1d, 2: SpectralConv2d, 3: SpectralConv3d}[dim](channels, channels, n, local)
    reference = PublishedSpectralConv2d(channels, channels, h + 1) if dim == 2 else \
        PublishedSpectralConvNd(channels, channels, h + 1, dim)
    x = torch.randn((batch, channels) + (n,) * dim)
    row = {"dim": dim, "size": n, "batch": batch, "channels": channels, "local_size": local}
    for mode in ("eval", "train"):
        def run(layer):
            if mode == "eval":
                with torch.no_grad():
                    return lambda: layer(x)
            return lambda: layer(x).square().sum().backward()

        def no_grad_call(layer):
            def call():
                with torch.no_grad():
                    layer(x)
            return call

        fns = {"gscli": no_grad_call(ours), "reference": no_grad_call(reference)} if mode == "eval" else \
            {"gscli": run(ours), "reference": run(reference)}
        # interleave the two, so that a change of machine load hits both alike
        t = {"gscli": [], "reference": []}
        for _ in range(3):
            for name, fn in fns.items():
                t[name].append(timed(fn, max(1, repeats // 3)))
        row[f"{mode}_gscli_ms"] = 1e3 * min(t["gscli"])
        row[f"{mode}_reference_ms"] = 1e3 * min(t["reference"])
        row[f"{mode}_ratio"] = row[f"{mode}_gscli_ms"] / row[f"{mode}_reference_ms"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="28,64", help="2-D sides (comma-separated)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--local-size", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-other-dims", action="store_true", help="skip the 1-D (n = 64) and 3-D (n = 12) rows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [(2, int(n)) for n in args.sizes.split(",")]
    if not args.no_other_dims:
        cases += [(1, 64), (3, 12)]
    rows = [compare(dim, n, args.batch, args.channels, args.local_size, args.repeats) for dim, n in cases]
    if args.json:
        print(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
        return
    print(f"spectral convolution, batch {args.batch}, {args.channels}->{args.channels} channels, float32, "
          f"{args.threads} thread(s); ratio = gscli / published approach (< 1: gscli faster)")
    print(f"{'dim':>3} {'size':>5} {'eval ms':>16} {'ratio':>6} {'train ms':>18} {'ratio':>6}")
    for r in rows:
        print(f"{r['dim']:>3} {r['size']:>5} {r['eval_gscli_ms']:>7.2f} /{r['eval_reference_ms']:>7.2f} "
              f"{r['eval_ratio']:>6.2f} {r['train_gscli_ms']:>8.2f} /{r['train_reference_ms']:>8.2f} "
              f"{r['train_ratio']:>6.2f}")


if __name__ == "__main__":
    main()
