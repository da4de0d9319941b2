"""Speed of gscli.nn.GroupDownsample against a naive path and the memory roofline, in one run.

For each case the script times, on one device and in one dtype (medians of ``--repeat`` calls):

* ``layer``   -- ``GroupDownsample.forward`` (one fused matmul in the input's dtype);
* ``naive``   -- a reference-style path: cast to complex64, Fourier transform (Laplacian eigenbasis of
  the Cayley graph), projection in the spectral domain, inverse transform, real part, sample on H --
  four separate einsums and an index;
* ``copy``    -- ``buffer.copy_(x)`` into a preallocated buffer: reads and writes the input once at
  the device's copy bandwidth. The memory roofline of the layer (read the input once, write the
  output once) is ``copy * (|x| + |y|) / (2 |x|)``.

The layer allocates its output. On CUDA the caching allocator makes that free; on CPU, glibc returns
large blocks to the kernel on free, so every call would page-fault its output in again (for the
large case that costs more than the matmul). On Linux CPUs the script therefore asks glibc to keep
freed memory (``mallopt``), which is what the jemalloc/tcmalloc that PyTorch's CPU tuning guide
recommends do anyway; ``--fresh-pages`` measures without it.

and prints ``naive / layer`` (goal >= 20x) and ``roofline / layer`` (the fraction of the copy
roofline the layer reaches; goal >= 50% for the large C8>C4 case). The naive path's output is
checked against the layer's.

Usage::

    python benchmarks/runtime.py                      # the three cases of the issue, CPU, float32
    python benchmarks/runtime.py --device cuda        # same on a GPU
    python benchmarks/runtime.py --scale 0.25         # batch sizes divided by 4 (small machines)
    python benchmarks/runtime.py --cases C8-C4 --compile --canonicalize --json

Operator files come from ``--store`` (default: the operator store); missing ones are built if
escnn is installed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from gscli.fileformat import read_operator
from gscli.groups import FiniteGroup
from gscli.nn import GroupDownsample
from gscli.solver import laplacian

# name -> (batch, fields, spatial): the sizes of the issue
CASES = {
    "D12-D6": (8, 10, (32, 32)),
    "Oh-O": (8, 4, (16, 16, 16)),
    "C8-C4": (64, 32, (64, 64)),
}


@dataclass
class Result:
    case: str
    shape: tuple[int, ...]
    dtype: str
    device: str
    layer_ms: float
    naive_ms: float
    copy_ms: float
    roofline_ms: float
    compiled_ms: float | None
    canonical_ms: float | None
    speedup_vs_naive: float
    roofline_fraction: float
    layer_gbps: float
    naive_max_rel_diff: float


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed blocks instead of unmapping them (Linux only); True if it took effect."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 2**30)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], device: torch.device, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


class NaivePath:
    """Fourier -> projection -> inverse -> sample in complex64, as separate einsums (the reference style)."""

    def __init__(self, path, device: torch.device) -> None:
        data = read_operator(path)
        cayley = data["group_cayley"]
        n = len(cayley)
        identity = int(data.attrs["group_identity"])
        group = FiniteGroup(str(data.attrs["group"]), cayley.astype(np.int64), identity,
                            tuple(int(g) for g in data["group_generators"]), tuple(str(i) for i in range(n)))
        _, q = np.linalg.eigh(laplacian(group))  # the graph Fourier basis, columns = frequencies
        spectral_projector = q.T @ data["antialias"] @ q  # P in the Fourier basis
        self.forward_basis = torch.from_numpy(q.T.copy()).to(device, torch.complex64)
        self.inverse_basis = torch.from_numpy(q.copy()).to(device, torch.complex64)
        self.projector = torch.from_numpy(spectral_projector).to(device, torch.complex64)
        self.nodes = torch.from_numpy(data["subgroup_nodes"]).to(device)
        self.n = n

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        spatial = x.shape[2:]
        xc = x.reshape(batch, channels // self.n, self.n, -1).to(torch.complex64)
        spectrum = torch.einsum("kn,bcns->bcks", self.forward_basis, xc)
        spectrum = torch.einsum("kl,bcls->bcks", self.projector, spectrum)
        signal = torch.einsum("nk,bcks->bcns", self.inverse_basis, spectrum).real
        sampled = signal[:, :, self.nodes]
        return sampled.reshape(batch, -1, *spatial).to(x.dtype)


def run_case(name: str, args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> Result:
    batch, fields, spatial = CASES[name]
    batch = max(1, round(batch * args.scale))
    layer = GroupDownsample.from_catalog(name, store=args.store).to(device)
    n, m = layer.group_order, layer.subgroup_order
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, fields * n, *spatial, generator=gen).to(device, dtype)
    naive = NaivePath(layer.source, device)

    with torch.no_grad():
        y = layer(x)
        reference = naive(x)
        diff = float((reference.float() - y.float()).abs().max() / y.float().abs().max())
        del reference
        layer_ms = median_ms(lambda: layer(x), device, args.repeat)
        naive_ms = median_ms(lambda: naive(x), device, max(1, args.repeat // 3), warmup=1)
        buffer = torch.empty_like(x)
        copy_ms = median_ms(lambda: buffer.copy_(x), device, args.repeat)
        del buffer
        canonical_ms = None
        if args.canonicalize:
            canonical = GroupDownsample.from_file(layer.source, canonicalize=True).to(device)
            canonical_ms = median_ms(lambda: canonical(x), device, args.repeat)
        compiled_ms = None
        if args.compile:
            compiled = torch.compile(layer)
            compiled(x)
            compiled_ms = median_ms(lambda: compiled(x), device, args.repeat)
    bytes_in, bytes_out = x.numel() * x.element_size(), y.numel() * y.element_size()
    roofline_ms = copy_ms * (bytes_in + bytes_out) / (2 * bytes_in)
    return Result(
        case=name.replace("-", ">"), shape=tuple(x.shape), dtype=str(dtype).replace("torch.", ""), device=str(device),
        layer_ms=layer_ms, naive_ms=naive_ms, copy_ms=copy_ms, roofline_ms=roofline_ms, compiled_ms=compiled_ms,
        canonical_ms=canonical_ms,
        speedup_vs_naive=naive_ms / layer_ms, roofline_fraction=roofline_ms / layer_ms,
        layer_gbps=(bytes_in + bytes_out) / (layer_ms * 1e-3) / 1e9, naive_max_rel_diff=diff,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=["float16", "bfloat16", "float32", "float64"])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every batch size by this (default 1)")
    parser.add_argument("--repeat", type=int, default=10, help="timed calls per measurement (median; default 10)")
    parser.add_argument("--store", default=None, help="operator folder (default: $GSCLI_STORE or operators/)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(layer)")
    parser.add_argument("--canonicalize", action="store_true", help="also time the canonicalizing layer")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--fresh-pages", action="store_true",
                        help="on CPU, let glibc unmap freed memory (every output is page-faulted in again)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    heap = "default glibc malloc"
    if torch.device(args.device).type == "cpu" and not args.fresh_pages and keep_freed_memory():
        heap = "freed memory kept for reuse (mallopt)"
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    results = [run_case(name, args, device, dtype) for name in args.cases]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu, {torch.get_num_threads()} threads, {heap}"
    print(f"gscli.nn runtime benchmark: {name}, {args.dtype}, torch {torch.__version__}, median of {args.repeat}")
    header = (f"{'case':8} {'shape':24} {'layer ms':>9} {'naive ms':>9} {'copy ms':>8} {'roof ms':>8} "
              f"{'naive/layer':>11} {'roof/layer':>10} {'GB/s':>6}" + (f" {'compiled ms':>11}" if args.compile else "")
              + (f" {'canonical ms':>12}" if args.canonicalize else ""))
    print(header)
    for r in results:
        line = (f"{r.case:8} {str(r.shape):24} {r.layer_ms:9.3f} {r.naive_ms:9.2f} {r.copy_ms:8.3f} "
                f"{r.roofline_ms:8.3f} "
                f"{r.speedup_vs_naive:10.1f}x {100 * r.roofline_fraction:9.0f}% {r.layer_gbps:6.1f}")
        if args.compile:
            line += f" {r.compiled_ms:11.3f}"
        if args.canonicalize:
            line += f" {r.canonical_ms:12.3f}"
        print(line)
    worst = max(r.naive_max_rel_diff for r in results)
    print(f"naive path agrees with the layer to {worst:.1e} (max relative difference)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
