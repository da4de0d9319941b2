"""Speed of ``gscli.scale.resample`` (rfftn/irfftn) against dense matrices, 2-D, float32 and float64.

For each (N -> M) and dtype, on a (batch, channels, N, N) tensor, one thread, all in the same run:

* ``fft``: :func:`gscli.scale.resample` with ``method="fft"`` (one rfftn/irfftn pair);
* ``auto``: :func:`gscli.scale.resample` as called by default: the dense per-axis product up to
  ``DENSE_MAX`` (the threshold this benchmark chose), the FFT above;
* ``fft floor``: ``rfftn`` at N then ``irfftn`` at M of an (M, M/2+1) slice of its output, no band
  bookkeeping: what any FFT path costs at least;
* ``separable``: the dense per-axis matrices, ``D X D^T`` (two matmuls; what the Kronecker product
  does, without forming it);
* ``kron``: the dense Kronecker product ``kron(D, D)`` (M^2 x N^2) applied to the flattened images,
  skipped (with the memory it would need) above ``--kron-mib``.

Printed: the fastest of ``--repeats`` interleaved rounds (the machine may be shared: the minimum is the
least disturbed measurement), the ratios of the dense paths to ``fft`` (> 1: the FFT is faster) and the
largest absolute difference of each path from the float64 separable reference, relative to the
reference's largest entry.

    python benchmarks/resample.py                 # N = 28, 64, 128, 256, 512; M = N/2 and about 0.7 N
    python benchmarks/resample.py --sizes 28 256 --batch 8 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gscli.scale import resample, resample_matrix  # noqa: E402


def _best_times(fns: dict, repeats: int) -> dict:
    """Fastest of ``repeats`` runs of each function, the functions interleaved in every round (so that
    load from other processes hits all of them alike); one warm-up call each first."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64, 128, 256, 512])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--kron-mib", type=float, default=256.0, help="largest dense Kronecker matrix to form (MiB)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    header = (f"{'N -> M':>12} {'dtype':>8} {'fft ms':>9} {'floor ms':>9} {'separable ms':>13} {'kron ms':>10} "
              f"{'separable/fft':>14} {'kron/fft':>9} {'auto/fft':>9} {'max diff fft':>13} {'max diff kron':>14}")
    print(f"resample (rfftn/irfftn) vs dense matrices; (batch, channels) = ({args.batch}, {args.channels}); "
          f"1 thread; fastest of {args.repeats} interleaved rounds; differences relative to the float64 separable reference")
    print(header)
    for n in args.sizes:
        for m in sorted({n // 2, round(0.7 * n)}, reverse=True):
            x64 = torch.from_numpy(rng.standard_normal((args.batch, args.channels, n, n)))
            d64 = torch.from_numpy(resample_matrix(n, m))
            reference = d64 @ x64 @ d64.T
            scale = float(reference.abs().max())
            kron_bytes = (m * m) * (n * n) * 8
            for dtype in (torch.float32, torch.float64):
                x, d = x64.to(dtype), d64.to(dtype)
                fns = {
                    "fft": lambda x=x, m=m: resample(x, (m, m), method="fft"),
                    "auto": lambda x=x, m=m: resample(x, (m, m)),
                    "separable": lambda x=x, d=d: d @ x @ d.T,
                    "floor": lambda x=x, m=m: torch.fft.irfftn(
                        torch.fft.rfftn(x, dim=(-2, -1), norm="forward")[..., :m, : m // 2 + 1], s=(m, m),
                        dim=(-2, -1), norm="forward"),
                }
                kron = kron_bytes / 2**20 <= args.kron_mib
                if kron:
                    k = torch.kron(d, d)
                    flat = x.reshape(args.batch * args.channels, n * n)
                    fns["kron"] = lambda flat=flat, k=k: flat @ k.T
                best = _best_times(fns, args.repeats)
                t_fft, t_sep, t_floor = best["fft"], best["separable"], best["floor"]
                diff_fft = float((resample(x, (m, m), method="fft").double() - reference).abs().max()) / scale
                if kron:
                    t_kron = best["kron"]
                    out = (flat @ k.T).reshape(args.batch, args.channels, m, m)
                    diff_kron = float((out.double() - reference).abs().max()) / scale
                    kron_ms, kron_ratio, kron_diff = f"{t_kron * 1e3:10.2f}", f"{t_kron / t_fft:9.1f}", f"{diff_kron:14.1e}"
                else:
                    kron_ms, kron_ratio = f"{'skipped':>10}", f"{'-':>9}"
                    kron_diff = f"{f'({kron_bytes / 2**30:.1f} GiB)':>14}"
                name = str(dtype).replace("torch.", "")
                print(f"{f'{n} -> {m}':>12} {name:>8} {t_fft * 1e3:9.2f} {t_floor * 1e3:9.2f} {t_sep * 1e3:13.2f} {kron_ms} "
                      f"{t_sep / t_fft:14.2f} {kron_ratio} {best['auto'] / t_fft:9.2f} {diff_fft:13.1e} {kron_diff}",
                      flush=True)


if __name__ == "__main__":
    main()
