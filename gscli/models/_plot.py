"""Plot of error vs depth for an :class:`~gscli.models.ErrorReport` (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

from gscli._optional import need
from gscli.models._analysis import ErrorReport

__all__ = ["plot_errors"]

_STYLE = {"antialiased": ("tab:blue", "o"), "plain": ("tab:red", "s"), "none": ("tab:gray", "^")}
_FLOOR = 1e-9  # errors below this (exact zeros included) are drawn at the floor of the log axis


def plot_errors(report: ErrorReport, path: str | Path) -> Path:
    """Write a PNG: equivariance (left) and invariance (right) error vs depth, one line per variant.

    Each point is the mean over the report's grid transforms of G. Vertical dotted lines mark the
    group downsampling blocks; the right panel ends with the logits.
    """
    from gscli.plots import plot_path

    path = plot_path(path)
    matplotlib = need("matplotlib", "cli", "plotting (--plot)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # block names in model order: the variant with the most blocks has them all ("none" lacks *.group)
    longest = max(report.variants, key=lambda v: len(v.layers))
    names = [layer.name for layer in longest.layers]
    names += [layer.name for v in report.variants for layer in v.layers if layer.name not in names]
    x_of = {name: i for i, name in enumerate(names)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(9.0, 1.0 * len(names) + 3), 4.4), sharey=True)
    for variant in report.variants:
        color, marker = _STYLE.get(variant.variant, ("black", "x"))
        xs = [x_of[layer.name] for layer in variant.layers]
        eq = [max(layer.mean("equivariance"), _FLOOR) for layer in variant.layers]
        inv = [max(layer.mean("invariance"), _FLOOR) for layer in variant.layers]
        logits = max(sum(variant.logits.values()) / max(len(variant.logits), 1), _FLOOR)
        label = f"{variant.variant} ({' > '.join(variant.groups)})"
        left.plot(xs, eq, color=color, marker=marker, label=label)
        right.plot(xs + [len(names)], inv + [logits], color=color, marker=marker, label=label)
    for variant in report.variants:
        for layer in variant.layers:
            if layer.kind == "group":
                for axis in (left, right):
                    axis.axvline(x_of[layer.name], color="0.7", linestyle=":", linewidth=1)
    for axis, title, ticks in ((left, "equivariance of features (lifted to G)", names),
                               (right, "invariance of pooled features and logits", names + ["logits"])):
        axis.set_yscale("log")
        axis.set_title(title, fontsize=10)
        axis.set_xticks(range(len(ticks)))
        axis.set_xticklabels(ticks, rotation=45, ha="right", fontsize=8)
        axis.grid(True, which="major", alpha=0.3)
    left.set_ylabel("relative error (mean over grid transforms)")
    left.legend(fontsize=8)
    if report.dimensions == 3:  # 23 or 47 cube symmetries do not fit a title: say what they are
        transforms = f"all {len(report.transforms)} non-identity elements of {report.group}"
    else:
        transforms = "transforms " + ", ".join(t.name for t in report.transforms)
    inputs = "voxel grids" if report.dimensions == 3 else "digits"
    fig.suptitle(f"{report.model}: {report.group}, {report.weights} weights, {report.images} {inputs}, "
                 f"{report.dtype}; {transforms}", fontsize=10, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
