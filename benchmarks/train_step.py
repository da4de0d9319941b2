"""Where a G-CNN's training step spends its time, against a plain CNN of the same width (CPU, one thread).

For one configuration (default: C24, fields 4/8/16, 29x29, the lifting convolution 5x5, then 3x3,
C24 -> C12 after the second stage, batch 64) the script measures, in one run and interleaved:

* the whole training step (forward, cross entropy, backward, Adam) of the G-CNN in each variant
  (``antialiased``, ``plain``, ``none``);
* the same step of a plain CNN with the same tensor shapes: ``nn.Conv2d`` with ``fields * |K|``
  channels in and out wherever the G-CNN convolves, ``BatchNorm2d``, ReLU, the same Gaussian blur
  and stride, and where the G-CNN downsamples the group, keeping every ``rate``-th channel (free);
  its only differences are that its filters are free parameters and its batch norm is per channel;
* per block of the ``antialiased`` model, forward + backward of each piece on that block's input:
  escnn's filter expansion ``basis @ weights`` (train mode re-expands the filter every step), the
  convolution with the expanded filter, the batch norm on fields, ReLU, the blur + stride, and the
  group-downsampling matmul.

It prints milliseconds (median over ``--repeat`` steps) and ratios against the plain CNN and
against ``none``. Everything is measured in the same process, so the ratios are comparable even
when the machine is loaded; the absolute times are not.

Usage::

    python benchmarks/train_step.py                         # the C24 model above: about 3 minutes
    python benchmarks/train_step.py --config configs/p4-mnist.toml --repeat 5
    python benchmarks/train_step.py --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gscli.models import VARIANTS, load_config, parse_config
from gscli.models._build import build_model
from gscli.models._builder import GroupCNN

C24 = {
    "name": "c24-4-8-16", "group": "C24", "image_size": 29, "group_downsampling": "antialiased",
    "stages": [{"name": "lift", "channels": 4, "kernel_size": 5},
               {"name": "block1", "channels": 8, "stride": 2, "rate": 2},
               {"name": "block2", "channels": 16, "stride": 2}],
}


class ShadowCNN(nn.Module):
    """A plain CNN whose every tensor has the shape of the G-CNN's (channels = fields * |K|)."""

    def __init__(self, model: GroupCNN) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = model.config.in_channels
        for module, block in zip(model.blocks, model.block_specs):
            if block.kind == "conv":
                conv = module[0]  # escnn R2Conv
                out = block.fields * block.group.order
                layers += [nn.Conv2d(channels, out, conv.kernel_size, stride=conv.stride, padding=conv.padding)]
                if model.config.batch_norm:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(nn.ReLU(inplace=True))
                channels = out
            elif block.kind == "pool":
                layers.append(_Blur(module.filter.detach().clone(), module.stride, module.padding))
            else:
                layers.append(_KeepEvery(module.rate))
                channels //= module.rate
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(channels, model.config.classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


class _Blur(nn.Module):
    def __init__(self, weight: Tensor, stride: Any, padding: Any) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.padding, groups=x.shape[1])


class _KeepEvery(nn.Module):
    def __init__(self, rate: int) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :: self.rate]


def step_timer(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], float]:
    """One training step (forward, loss, backward, Adam) of ``model``; returns its seconds."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> float:
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    step()  # warm-up
    return step


def _fwd_bwd(fn: Callable[[Tensor], Tensor], x: Tensor) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        out = fn(x)
        out.backward(torch.ones_like(out))
        return time.perf_counter() - start

    return run


def piece_timers(model: GroupCNN, x: Tensor) -> dict[str, Callable[[], float]]:
    """Forward + backward of every piece of every block, each on that block's real input shape."""
    from gscli.models import _escnn_nn

    enn = _escnn_nn.enn()
    timers: dict[str, Callable[[], float]] = {}
    model.train()
    h = enn.GeometricTensor(x, model.input_type)
    for module, block, out_type in zip(model.blocks, model.block_specs, [model.field_type(i) for i in
                                                                           range(len(model.blocks))]):
        inp = h.tensor.detach().requires_grad_()
        if block.kind == "conv":
            conv = module[0]
            weights = conv.weights

            def expand(_: Tensor, conv: Any = conv) -> Tensor:
                return conv.expand_parameters()[0]

            timers[f"{block.name} expansion"] = _fwd_bwd(expand, weights)
            filt = conv.expand_parameters()[0].detach()
            timers[f"{block.name} conv2d"] = _fwd_bwd(
                lambda t, f=filt, c=conv: F.conv2d(t, f, stride=c.stride, padding=c.padding), inp)
            with torch.no_grad():
                out = conv(enn.GeometricTensor(inp.detach(), conv.in_type)).tensor
            rest = list(module)[1:]
            for piece in rest:
                name = type(piece).__name__
                if name == "ReLU":
                    timers[f"{block.name} relu"] = _fwd_bwd(torch.relu, out.detach().requires_grad_())
                else:
                    timers[f"{block.name} {name}"] = _fwd_bwd(
                        lambda t, p=piece, ty=conv.out_type: p(enn.GeometricTensor(t, ty)).tensor,
                        out.detach().requires_grad_())
        elif block.kind == "pool":
            timers[f"{block.name} blur+stride"] = _fwd_bwd(
                lambda t, p=module, ty=out_type: p(enn.GeometricTensor(t, ty)).tensor, inp)
        else:
            timers[f"{block.name} matmul"] = _fwd_bwd(lambda t, p=module: p(t), inp)
        with torch.no_grad():
            h = module(h) if block.kind != "group" else enn.GeometricTensor(module(h.tensor), out_type)
    return timers


def interleaved(timers: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Median milliseconds of each timer, run round-robin so that load changes hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeat):
        for name, timer in timers.items():
            times[name].append(timer())
    return {name: statistics.median(v) * 1e3 for name, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a model configuration (default: C24, fields 4/8/16, 29x29)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5, help="steps per measurement (median)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--store", help="operator store (default: $GSCLI_STORE or operators/)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config) if args.config else parse_config(C24)
    side = config.image_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, config.in_channels, side, side, generator=gen)
    y = torch.randint(0, config.classes, (args.batch,), generator=gen)
    models = {v: build_model(config, v, store=args.store, seed=0) for v in VARIANTS}
    steps = {}
    for variant, model in models.items():
        steps[f"gcnn {variant}"] = step_timer(model, x, y)
        steps[f"cnn {variant}"] = step_timer(ShadowCNN(model), x, y)
    step_ms = interleaved(steps, args.repeat)
    pieces = interleaved(piece_timers(models["antialiased"], x), args.repeat)
    document = {"config": config.name, "batch": args.batch, "threads": args.threads, "repeat": args.repeat,
                "step_ms": step_ms, "pieces_ms": pieces,
                "gcnn_over_cnn": {v: step_ms[f"gcnn {v}"] / step_ms[f"cnn {v}"] for v in VARIANTS},
                "gcnn_over_none": {v: step_ms[f"gcnn {v}"] / step_ms["gcnn none"] for v in VARIANTS}}
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(f"{config.name}, batch {args.batch}, {args.threads} thread(s), median of {args.repeat} steps, "
          "interleaved")
    print(f"  {'variant':<12}{'G-CNN ms':>10}{'CNN ms':>9}{'G-CNN/CNN':>11}{'G-CNN/none':>12}")
    for v in VARIANTS:
        print(f"  {v:<12}{step_ms[f'gcnn {v}']:>10.0f}{step_ms[f'cnn {v}']:>9.0f}"
              f"{document['gcnn_over_cnn'][v]:>11.2f}{document['gcnn_over_none'][v]:>12.2f}")
    total = sum(pieces.values())
    print("  antialiased, forward + backward of each piece on its block's input (share of their sum):")
    for name, ms in pieces.items():
        print(f"    {name:<36}{ms:>9.1f} ms {100 * ms / total:>6.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
