"""gscli's anti-aliased pointwise nonlinearity on a finite subgroup vs escnn's FourierPointwise.

Same band limit, same ReLU, float64 on CPU. For each case: gscli's ``SubgroupPointwise`` (samples on
H through D = S P, back through U), escnn's ``FourierPointwise`` on a grid of exactly H's elements
(equal sample count |H|), and ``FourierPointwise`` on escnn's usual grid for the group. Measured:

- equivariance error under H and under random elements of G:
  mean over elements of |f(rho(g) x) - rho(g) f(x)| / |f(x)| (norms over the whole batch);
- reconstruction error with the identity in place of ReLU, on random band-limited inputs x
  (|f(x) - x| / |x|) and on inputs in gscli's kept space V (x = P x);
- time per call (median of repeats, one thread), batch (B, C*dim, 8, 8).

Run: python benchmarks/continuous_vs_fourierpointwise.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

CASES = [
    ("SO2_L5>C8", {"type": "regular", "N": 16}, "regular N=16"),
    ("SO3_L3>O", {"type": "thomson_cube", "N": 4}, "thomson_cube N=4"),
]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def _act(rho: np.ndarray, x: torch.Tensor, dim: int) -> torch.Tensor:
    b, c = x.shape[0], x.shape[1] // dim
    return torch.einsum("ed,bcd...->bce...", torch.as_tensor(rho), x.reshape(b, c, dim, *x.shape[2:])).reshape(x.shape)


def _time(fn, x, repeats: int) -> float:
    fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(spec_text: str, grid: dict, grid_name: str, quick: bool) -> list[dict]:
    from escnn import gspaces
    from escnn import nn as enn

    from gscli.continuous import SubgroupPointwise, build_continuous
    from gscli import _escnn_continuous as ce

    op = build_continuous(spec_text)
    spec, dim, m = op.spec, op.dimension, op.order
    group = ce.escnn_group(spec.group)
    space = gspaces.no_base_space(group)
    rep = group.bl_regular_representation(spec.group.L)
    irreps = group.bl_irreps(spec.group.L)
    _, _, h_elements, h_images = ce.subgroup(spec)

    def with_grid(elements):
        group.grid = lambda *a, **k: list(elements)
        try:
            return enn.FourierPointwise(space, 1, irreps, function="p_relu", inplace=False)
        finally:
            del group.grid

    fp_equal = with_grid(h_images)
    fp_default = enn.FourierPointwise(space, 1, irreps, function="p_relu", inplace=False, **grid)
    ours = SubgroupPointwise.from_operator(op)
    ours_identity = SubgroupPointwise.from_operator(op, function=lambda t: t)

    def fp_apply(module):
        a, ainv = module.A, module.Ainv

        def apply(x, f=torch.relu):
            b, c = x.shape[0], x.shape[1] // dim
            xs = x.reshape(b, c, dim, -1)
            y = f(torch.einsum("gf,bcfs->bcgs", a, xs))
            return torch.einsum("fg,bcgs->bcfs", ainv, y).reshape(x.shape)
        return apply

    methods = [
        ("gscli SubgroupPointwise", f"{spec.subgroup} ({m})", lambda x, f=torch.relu: (ours if f is torch.relu else ours_identity)(x)),
        ("escnn FourierPointwise", f"{spec.subgroup} ({m})", fp_apply(fp_equal)),
        ("escnn FourierPointwise", f"{grid_name} ({fp_default.A.shape[0]})", fp_apply(fp_default)),
    ]
    gen = torch.Generator().manual_seed(0)
    batch, fields, side = (4, 4, 4) if quick else (8, 8, 8)
    x = torch.randn(batch, fields * dim, side, side, generator=gen)
    x[:, ::dim] = x[:, ::dim].abs() + 1.0  # a positive mean, as escnn's own check does, so ReLU is not trivial
    p = torch.as_tensor(op["antialias"])
    x_v = torch.einsum("ed,bcds->bces", p, x.reshape(batch, fields, dim, -1)).reshape(x.shape)
    h_rhos = [rep(g) for g in h_images]
    g_rhos = [rep(g) for g in ce.random_elements(spec.group, 10 if quick else 50, seed=1)]
    rows = []
    for name, grid_text, f in methods:
        fx = f(x)
        eq_h = np.mean([_rel(f(_act(r, x, dim)), _act(r, fx, dim)) for r in h_rhos])
        eq_g = np.mean([_rel(f(_act(r, x, dim)), _act(r, fx, dim)) for r in g_rhos])
        ident = lambda t: t  # noqa: E731
        rec = _rel(f(x, ident) if name.startswith("escnn") else ours_identity(x), x)
        rec_v = _rel(f(x_v, ident) if name.startswith("escnn") else ours_identity(x_v), x_v)
        seconds = _time(f, x, 5 if quick else 20)
        rows.append({"case": spec_text, "method": name, "grid": grid_text, "eq_H": eq_h, "eq_G": eq_g,
                     "rec": rec, "rec_V": rec_v, "ms": 1e3 * seconds})
    del h_elements
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batch and fewer repeats")
    args = parser.parse_args()
    rows = []
    for spec, grid, name in CASES:
        rows += run(spec, grid, name, args.quick)
    print("| case | method | grid (samples) | equivariance error, H | equivariance error, G | "
          "reconstruction, band-limited x | reconstruction, x in V | ms per call |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['method']} | {r['grid']} | {r['eq_H']:.2e} | {r['eq_G']:.2e} | "
              f"{r['rec']:.2e} | {r['rec_V']:.2e} | {r['ms']:.2f} |")


if __name__ == "__main__":
    main()
