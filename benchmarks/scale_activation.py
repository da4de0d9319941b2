"""Speed of gscli.scale.ScaleEqActivation against a per-resolution loop and a plain ReLU, in one run.

For each case (input size, increment) the script times, on CPU with one thread (medians of
``--repeat`` calls, float32, ReLU and max-pooling by 2):

* ``layer`` -- ``ScaleEqActivation.forward``: one rfft2 of the input; per resolution r of the ladder
  one irfft2 at r, ReLU, max-pool, one rfft2 at r/2, a gather of its rings; one scatter, one irfft2;
* ``loop``  -- the formula of DESIGN §7 written out with the public ``resample``: for every resolution
  r, ``y = max_pool2d(relu(resample(x, r)))``, upscaled back with ``resample(y, N/2)``, its rfft2, and
  the rings r supplies copied into the output spectrum (``torch.where``); one irfft2 at the end;
* ``relu``  -- ``max_pool2d(relu(x), 2)``: what the layer replaces (not scale-equivariant).

On Linux the script asks glibc to keep freed memory for reuse (as ``benchmarks/runtime.py`` does; the
allocators PyTorch's CPU tuning guide recommends do so anyway); ``--fresh-pages`` measures without it.
It checks that ``loop`` and ``layer`` agree (max abs difference relative to max abs output <= 1e-6)
and prints ``loop / layer`` (goal >= 2 at 64x64) and ``layer / relu``.

Usage::

    python benchmarks/scale_activation.py                 # 28x28 and 64x64, increments 1 and 4
    python benchmarks/scale_activation.py --batch 8 --channels 8 --repeat 5 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from gscli.scale import ScaleEqActivation, resample

from runtime import keep_freed_memory  # benchmarks/runtime.py: one home for the allocator setting

# (input size, base size, increment)
CASES = [(28, 8, 1), (28, 8, 4), (64, 16, 1), (64, 16, 4)]


def loop_activation(layer: ScaleEqActivation, x: torch.Tensor) -> torch.Tensor:
    """The straightforward path: every resolution resampled, activated, pooled and upscaled separately."""
    n = x.shape[-1]
    out_size = n // layer.pool
    k1 = torch.fft.fftfreq(out_size, 1.0 / out_size).abs()[:, None]
    k2 = torch.arange(out_size // 2 + 1, dtype=k1.dtype)[None, :]
    ring = torch.maximum(k1, k2)
    spectrum = torch.zeros(x.shape[:2] + (out_size, out_size // 2 + 1), dtype=torch.complex64)
    for r, (low, high) in layer.resolutions(n):
        y = F.max_pool2d(layer.activation(resample(x, r)), layer.pool)
        up = torch.fft.rfft2(resample(y, out_size), norm="forward")
        spectrum = torch.where((ring >= low) & (ring <= high), up, spectrum)
    return torch.fft.irfft2(spectrum, s=(out_size, out_size), norm="forward")


def median_time(fn: Callable[[], torch.Tensor], repeat: int) -> float:
    fn()  # warm-up (plans, caches)
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--fresh-pages", action="store_true", help="do not ask glibc to keep freed memory")
    args = parser.parse_args()
    heap = "fresh pages" if args.fresh_pages or not keep_freed_memory() else "freed memory kept for reuse (mallopt)"
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for size, base, increment in CASES:
        layer = ScaleEqActivation(torch.relu, base_size=base, pool=2, increment=increment)
        x = torch.tensor(rng.standard_normal((args.batch, args.channels, size, size)), dtype=torch.float32)
        with torch.no_grad():
            fast, slow = layer(x), loop_activation(layer, x)
            difference = float((fast - slow).abs().max() / slow.abs().max())
            t_layer = median_time(lambda: layer(x), args.repeat)
            t_loop = median_time(lambda: loop_activation(layer, x), args.repeat)
            t_relu = median_time(lambda: F.max_pool2d(F.relu(x), 2), args.repeat)
        rows.append({"size": size, "base_size": base, "increment": increment, "pool": 2,
                     "resolutions": len(layer.resolutions(size)), "layer_ms": 1e3 * t_layer,
                     "loop_ms": 1e3 * t_loop, "relu_ms": 1e3 * t_relu, "loop_over_layer": t_loop / t_layer,
                     "layer_over_relu": t_layer / t_relu, "max_rel_difference": difference})
    if args.json:
        print(json.dumps({"batch": args.batch, "channels": args.channels, "threads": args.threads, "heap": heap,
                          "dtype": "float32", "cases": rows}, indent=2))
        return
    print(f"ScaleEqActivation(relu, pool=2), float32, batch {args.batch} x {args.channels} channels, "
          f"{args.threads} thread(s), median of {args.repeat}, {heap}")
    print(f"{'size':>5} {'base':>4} {'inc':>3} {'#r':>3} {'layer ms':>9} {'loop ms':>9} {'relu ms':>8} "
          f"{'loop/layer':>10} {'layer/relu':>10} {'max diff':>9}")
    for row in rows:
        print(f"{row['size']:>5} {row['base_size']:>4} {row['increment']:>3} {row['resolutions']:>3} "
              f"{row['layer_ms']:>9.2f} {row['loop_ms']:>9.2f} {row['relu_ms']:>8.3f} "
              f"{row['loop_over_layer']:>9.1f}x {row['layer_over_relu']:>9.0f}x {row['max_rel_difference']:>9.1e}")
    if any(row["max_rel_difference"] > 1e-6 for row in rows):
        raise SystemExit("layer and loop disagree by more than 1e-6")


if __name__ == "__main__":
    main()
