"""``gscli eval-model``: error propagation through a G-CNN with group downsampling, on real digits."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from gscli.cli._app import main
from gscli.cli._common import (
    SEED,
    folder_option_value,
    json_option,
    plain,
    plot_option,
    print_json,
    stderr_console,
    stdout_console,
)
from gscli.errors import CheckError, StoreError, shorten
from gscli.store import STORE_ENV


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def _check_store(store: str | None) -> None:
    """The store rule of docs/cli.md, before any work and with messages naming ``--store``: a folder
    other than ``operators/`` must exist (``operators/`` is created when something is built). Whether
    it is writable matters only if an operator is missing, and is checked then."""
    import os

    from gscli.store import DEFAULT_STORE, check_store_folder, resolve_store

    folder = resolve_store(store)
    if folder == Path(DEFAULT_STORE) and not os.path.lexists(folder):
        return
    check_store_folder(folder, option="--store")


def _variant_table(variant, dims: int = 2) -> Table:
    table = Table(title=f"{variant.variant}: {' > '.join(variant.groups)}", title_justify="left")
    table.add_column("block", no_wrap=True)
    table.add_column("K")
    for col in (f"C x |K| x s^{dims}", "eq. in K", "eq. out", "inv. in K", "inv. out"):
        table.add_column(col, justify="right", no_wrap=True)
    for layer in variant.layers:
        fields, order, side = layer.shape
        outside = [k for k in layer.equivariance if k not in layer.inside]

        def mean_outside(values: dict[str, float], names: list[str] = outside) -> float | None:
            return sum(values[k] for k in names) / len(names) if names else None

        table.add_row(plain(layer.name), layer.group, f"{fields}x{order}x{side}^{dims}",
                      _fmt(layer.worst("equivariance", True)), _fmt(mean_outside(layer.equivariance)),
                      _fmt(layer.worst("invariance", True)), _fmt(mean_outside(layer.invariance)))
    return table


def _summary_table(report) -> Table:
    table = Table(title=plain(f"{report.model}: logits, {report.weights} weights (H: last stage's group; "
                              "in H: max, out: mean; test acc on rotated "
                              f"{'tetracubes' if report.dimensions == 3 else 'digits'})"), title_justify="left")
    columns = ["variant", "groups", "params", "acts/img", "logits in H", "logits out"]
    trained = any(v.training for v in report.variants)
    if trained:
        columns += ["test acc", "train s"]
    columns.append("ok")
    for col in columns:
        table.add_column(col, justify="left" if col in ("variant", "groups") else "right", no_wrap=True)
    for v in report.variants:
        row = [v.variant, " > ".join(v.groups), str(v.parameters), str(v.activations), _fmt(v.logits_inside),
               _fmt(v.logits_outside)]
        if trained:
            row += [f"{v.training['test_accuracy_rotated']:.3f}", f"{v.training['seconds']:.1f}"]
        row.append("[green]yes[/]" if v.ok else "[red]NO[/]")
        table.add_row(*row)
    return table


@main.command("eval-model")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--weights", type=str, default="random", show_default=True, metavar="random|trained|RUN_DIR",
              help="Seeded random weights, weights trained on rotated digits (config's [training]), or the "
                   "weights of a gscli train run folder (refused if from another config, variant or operators, "
                   "or damaged).")
@click.option("--variants", default="antialiased,plain,none", show_default=True, metavar="LIST",
              help="Comma-separated group downsampling variants: antialiased, plain, none "
                   "(scale models: exact, pointwise; default both; a run: its own variant).")
@click.option("--images", type=click.IntRange(min=1), default=64, show_default=True,
              help="Number of test digits the errors are measured on.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random weights.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Precision of the model (scale models: both unless given).")
@click.option("--store", type=str, envvar=STORE_ENV, show_envvar=True, callback=folder_option_value, metavar="DIR",
              help="Operator store (missing operators are built into it; it must exist, except operators/, "
                   "which is created)  [default: operators]")
@plot_option("Write a plot of error vs depth.")
@json_option
def eval_model_command(config: Path, weights: str, variants: str, images: int, seed: int, dtype: str,
                       store: str | None, plot: Path | None, as_json: bool) -> None:
    """Measure how equivariance errors propagate through the G-CNN of CONFIG (.toml or .json).

    Every exact grid transform g of the model's group G (90-degree rotations, flips) is applied to
    the config's digits ([training] dataset: scikit-learn's 8x8 digits, resized, or the 5000 real
    MNIST digits). For every block the table shows the relative equivariance
    error of its features (mapped back to G-fields with the reconstruction operators U) and the
    invariance error of their group+space pooling, for g in the block's group K ("in K": float
    rounding in theory) and outside it; then the invariance error of the logits, for anti-aliased,
    plain and no group downsampling.

    3-D configurations (grid_size, group O or Oh) are measured the same way on voxel grids of the
    eight tetracubes, under every cube symmetry of G (23 rotations, 47 with the inversion), each an
    exact permutation of the voxels matched to escnn's element order.

    Exits with status 1 if some variant's logits are not invariant (within 1e-4 relative in
    float32, 1e-6 in float64) under the transforms of its last stage's group.

    A configuration with kind = "scale" (a scale-equivariant Fourier model) gets a table of every
    layer's scale-equivariance error ||f(D x) - D f(x)|| / ||D f(x)|| over the sizes of its domain, on
    the full band, for the variants exact and pointwise (--variants), in float64 and float32 (or
    --dtype if given), on real MNIST digits; exit status 1 if the exact variant exceeds 1e-12
    (float64) or 1e-5 (float32). --plot draws error against size.

    \b
    Examples:
      gscli eval-model configs/p4m-digits.toml --plot p4m.png
      gscli eval-model configs/d12-digits.json --weights trained --json
      gscli eval-model configs/p4-mnist.toml --weights runs/p4
      gscli eval-model configs/o-polycubes.toml --images 4 --plot o.png
      gscli eval-model configs/scale-mnist.toml --plot scale.png
    """
    import torch

    from gscli.models import load_config
    from gscli.models._analysis import propagate_errors

    chosen = [v.strip() for v in variants.split(",") if v.strip()]
    allowed = ("antialiased", "plain", "none")
    bad = [v for v in chosen if v not in allowed + ("exact", "pointwise")]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise click.BadParameter(f"{shorten(variants)}: give distinct names among {', '.join(allowed)} "
                                 "(scale models: exact, pointwise)", param_hint="--variants")
    _check_store(store)  # before minutes of measuring, not after
    run = None
    if weights not in ("random", "trained"):
        run = Path(weights)
        if not run.is_dir():
            raise click.BadParameter(f"{shorten(weights)} is neither random, trained nor a run folder",
                                     param_hint="--weights")
    parsed = load_config(config)
    if run is not None and getattr(parsed, "kind", "gcnn") != "gcnn":
        raise click.BadParameter("run folders hold planar G-CNNs (gscli train); scale models take random or trained",
                                 param_hint="--weights")
    if getattr(parsed, "kind", "gcnn") == "scale":  # scale-equivariant Fourier models
        from gscli.cli._scale_model import eval_scale_model

        return eval_scale_model(parsed, weights, variants, images, seed, dtype, plot, as_json)
    if any(v not in allowed for v in chosen):
        raise click.BadParameter(f"{shorten(variants)}: G-CNN models take names among {', '.join(allowed)}",
                                 param_hint="--variants")
    err = stderr_console()
    try:
        report = propagate_errors(parsed, weights=weights, variants=chosen, images=images, seed=seed, store=store,
                                  dtype=getattr(torch, dtype), log=lambda line: err.print(plain(line), style="dim"),
                                  run=run)
    except StoreError as exc:  # the store's messages name build's --out; this command's option is --store
        raise StoreError(str(exc).replace("(--out, ", "(--store, ").replace("another --out", "another --store")) from None
    if plot is not None:
        from gscli.models._plot import plot_errors

        plot_errors(report, plot)
    if as_json:
        print_json(report.as_dict())
    else:
        console = stdout_console()
        if not console.is_terminal:
            console = Console(highlight=False, soft_wrap=False, width=120)  # files and pipes get whole tables
        transforms = ", ".join(f"{t.name} ({t.description})" for t in report.transforms)
        side = "x".join([str(report.image_size)] * report.dimensions)
        inputs = "voxel grids (tetracubes)" if report.dimensions == 3 else "digits"
        console.print(plain(f"{report.model}: group {report.group}, {report.images} {inputs} at {side}, "
                            f"{report.dtype}; grid transforms: {transforms}"))
        for variant in report.variants:
            console.print(_variant_table(variant, report.dimensions))
        console.print("eq.: equivariance of the block's features lifted to G; inv.: invariance of their "
                      "max-over-K, mean-over-space pooling; in K: max over transforms in the block's group K; "
                      "out: mean over the others")
        console.print(_summary_table(report))
        if plot is not None:
            console.print(plain(f"plot: {plot}"))
    if not report.ok:
        raise CheckError("logits not invariant where theory says they are: " + "; ".join(report.failures()))
