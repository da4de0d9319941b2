"""``gscli eval-model`` for scale models (``kind = "scale"``): per-layer scale-equivariance errors."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table

from gscli.cli._common import plain, print_json, stderr_console, stdout_console
from gscli.errors import CheckError, shorten


def _given(name: str) -> bool:
    context = click.get_current_context(silent=True)
    return context is not None and context.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def _layer_table(report) -> Table:
    table = Table(title=plain(f"{report.model}: max relative error ||f(D x) - D f(x)|| / ||D f(x)|| over sizes "
                              f"{report.sizes[0]}..{report.sizes[-1]} (full band)"), title_justify="left")
    table.add_column("layer", no_wrap=True)
    table.add_column("C x side", justify="right")
    for v in report.variants:
        table.add_column(f"{v.variant}\n{v.dtype}", justify="right", no_wrap=True)
    first = report.variants[0]
    for i, layer in enumerate(first.layers):
        shape = f"{layer.channels}x{layer.side}^2" if layer.side is not None else f"{layer.channels}"
        table.add_row(layer.name, shape, *(f"{v.layers[i].worst:.1e}" for v in report.variants))
    return table


def _summary_table(report) -> Table:
    table = Table(title="summary (consistency: share of images predicted the same at every size)",
                  title_justify="left")
    trained = any(v.accuracy is not None for v in report.variants)
    columns = ["variant", "dtype", "params", "max error", "tolerance", "consistency"]
    if trained:
        columns.append("test acc")
    columns.append("ok")
    for col in columns:
        table.add_column(col, justify="left" if col in ("variant", "dtype") else "right", no_wrap=True)
    for v in report.variants:
        row = [v.variant, v.dtype, str(v.parameters), f"{v.worst:.1e}",
               f"{v.tolerance:.0e}" if v.variant == "exact" else "-", f"{v.consistency:.3f}"]
        if trained:
            row.append(f"{v.accuracy:.3f}" if v.accuracy is not None else "-")
        row.append("control" if v.variant != "exact" else "[green]yes[/]" if v.ok else "[red]NO[/]")
        table.add_row(*row)
    return table


def eval_scale_model(config, weights: str, variants: str, images: int, seed: int, dtype: str,
                     plot: Path | None, as_json: bool) -> None:
    """The scale branch of ``gscli eval-model`` (options as parsed there)."""
    import torch

    from gscli.models._scale import SCALE_VARIANTS
    from gscli.models._scale_eval import plot_scale_errors, scale_errors

    if _given("variants"):
        chosen = [v.strip() for v in variants.split(",") if v.strip()]
        bad = [v for v in chosen if v not in SCALE_VARIANTS]
        if bad or not chosen or len(set(chosen)) != len(chosen):
            raise click.BadParameter(f"{shorten(variants)}: scale models take distinct names among "
                                     f"{', '.join(SCALE_VARIANTS)}", param_hint="--variants")
    else:
        chosen = list(SCALE_VARIANTS)
    dtypes = [getattr(torch, dtype)] if _given("dtype") else [torch.float64, torch.float32]
    err = stderr_console()
    report = scale_errors(config, variants=chosen, dtypes=dtypes, images=images, seed=seed, weights=weights,
                          log=lambda line: err.print(plain(line), style="dim"))
    if plot is not None:
        plot_scale_errors(report, plot)
    if as_json:
        print_json(report.as_dict())
    else:
        console = stdout_console()
        if not console.is_terminal:
            console = Console(highlight=False, soft_wrap=False, width=120)
        console.print(plain(f"{report.model}: scale model, {report.images} images ({report.data}) at "
                            f"{report.max_size}x{report.max_size}, {weights} weights, seed {seed}; sizes "
                            f"{', '.join(map(str, report.sizes))}"))
        console.print(_layer_table(report))
        console.print(_summary_table(report))
        if plot is not None:
            console.print(plain(f"plot: {plot}"))
    if not report.ok:
        raise CheckError("scale equivariance fails where theory says it is exact: " + "; ".join(report.failures()))
