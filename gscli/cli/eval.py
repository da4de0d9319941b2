"""``gscli eval``: re-check operator files from their arrays and measure what anti-aliasing buys."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gscli.cli._app import main
from gscli.cli._common import SEED, json_option, out_option, print_json, progress_bar, stdout_console
from gscli.errors import CheckError
from gscli.evaluate import EvalReport, evaluate_store, store_files


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


#: How a share with a zero denominator reads (JSON: null).
UNDEFINED = "undefined (no energy)"


def _share(value: float | None, spec: str = ".3g") -> str:
    return UNDEFINED if value is None else format(value, spec)


def _checks_table(report: EvalReport, details: bool) -> Table:
    table = Table(title=f"{report.operator}: guarantees recomputed from {report.path}", title_justify="left")
    columns = [("check", "left"), ("error", "right"), ("tolerance", "right"), ("", "left")]
    if details:
        columns.append(("what", "left"))
    for col, justify in columns:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in report.checks:
        verdict = "[green]ok[/]" if c.passed else "[bold red]FAILED[/]"
        row = [c.name, f"{c.error:.2e}", f"{c.tolerance:.0e}", verdict] + ([escape(c.detail)] if details else [])
        table.add_row(*row)
    return table


#: The rows of the signal table per file kind (operator family): on a grid the images are
#: reconstructed over the whole grid and there is no group action.
_SIGNAL_ROWS = {
    "group": [
        ("out-of-band energy of the signals", lambda s: s.out_of_band),
        ("reconstruction error on G\\H, plain", lambda s: s.reconstruction_plain),
        ("reconstruction error on G\\H, operator", lambda s: s.reconstruction_operator),
        ("aliasing energy, plain", lambda s: s.aliasing_plain),
        ("aliasing energy, operator", lambda s: s.aliasing_operator),
        ("H-equivariance error, plain", lambda s: s.equivariance_plain),
        ("H-equivariance error, operator", lambda s: s.equivariance_operator),
    ],
    "grid": [
        ("out-of-band energy of the signals", lambda s: s.out_of_band),
        ("reconstruction error U y (whole grid), plain", lambda s: s.reconstruction_plain),
        ("reconstruction error U y (whole grid), operator", lambda s: s.reconstruction_operator),
        ("aliasing energy, plain", lambda s: s.aliasing_plain),
        ("aliasing energy, operator", lambda s: s.aliasing_operator),
    ],
}
_SIGNALS_ARE = {"group": "signals on G", "grid": "images"}


def _signals_table(report: EvalReport) -> Table:
    table = Table(title=f"{report.operator}: plain subsampling vs the operator", title_justify="left")
    table.add_column("measure")
    for s in report.signals:
        table.add_column(escape(s.signal.split(" (")[0]), justify="right")
    for label, get in _SIGNAL_ROWS[report.kind]:
        unmeasured = "n/a" if "equivariance" in label else UNDEFINED  # equivariance: None = not measured
        table.add_row(label, *(_fmt(get(s)) or unmeasured for s in report.signals))
    return table


def _summary_table(reports: list[EvalReport]) -> Table:
    table = Table(title="gscli eval", title_justify="left")
    for col, justify in (("operator", "left"), ("checks", "right"), ("worst\nerror/tol.", "right"),
                         ("recon. error G\\H\nplain -> op.", "right"), ("aliasing\nplain -> op.", "right"),
                         ("s", "right"), ("", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in reports:
        if r.error is not None:
            table.add_row(r.path.name, "", "", "", "", f"{r.seconds:.2f}", "[bold red]FAILED[/] unreadable")
            continue
        passed = sum(c.passed for c in r.checks)
        ratios = [c.error / c.tolerance for c in r.checks if c.tolerance > 0]
        worst = f"{max(ratios):.2g}" if ratios else ""
        first = r.signals[0] if r.signals else None
        recon = f"{_share(first.reconstruction_plain, '.2f')} -> {_share(first.reconstruction_operator, '.2f')}" if first else ""
        alias = f"{_share(first.aliasing_plain, '.2g')} -> {_share(first.aliasing_operator, '.0g')}" if first else ""
        verdict = "[green]ok[/]" if r.passed else "[bold red]FAILED[/]"
        table.add_row(escape(r.operator or "") or r.path.name, f"{passed}/{len(r.checks)}", worst, recon, alias,
                      f"{r.seconds:.2f}", verdict)
    return table


def _print_report(console: Console, report: EvalReport, details: bool) -> None:
    if report.error is not None:
        console.print(f"[bold red]{escape(str(report.path))}[/]: {escape(report.error)}")
        return
    console.print(_checks_table(report, details))
    if report.signals:
        console.print(_signals_table(report))
        for sig in report.signals:
            extra = f"; H-equivariance measured on {', '.join(sig.transforms)}" if sig.transforms else ""
            where = _SIGNALS_ARE[report.kind]
            console.print(escape(f"signals: {sig.signal}, {sig.count} {where}{extra}"))
    for note in report.notes:
        console.print(escape(f"note: {note}"))


@main.command("eval")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path), metavar="[FILE]...")
@click.option("--catalog", "catalog", is_flag=True, help="Evaluate every .h5 file in the operator store (OUT).")
@out_option
@click.option("--signals/--no-signals", default=True, show_default=True,
              help="Also compare plain subsampling with the operator on real and random signals.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random signals and lifting weights.")
@click.option("--verbose", "-v", is_flag=True,
              help="Print every check of every file with what it measures (default: the checks of one file, or of failures).")
@json_option
def eval_command(files: tuple[Path, ...], catalog: bool, out: str, signals: bool, seed: int, verbose: bool,
                 as_json: bool) -> None:
    """Re-check every guarantee of operator FILEs from their arrays alone; exit 1 if one fails.

    Recomputed (stored flags are not trusted): projector, reconstruction, H-equivariance for every
    h in H in float64 and in float32 through the runtime path, character, Laplacian grading, the
    file's own tables, basis and band table, and for C_N the FFT low-pass reference. With
    --signals (default), plain subsampling is compared with the operator on feature maps of real
    images lifted to G by an escnn convolution (C_N, D_N), smooth functions (point groups) and
    white noise: reconstruction error on the discarded elements, aliasing energy, equivariance
    error under the joint spatial + fiber action of H.

    \b
    Examples:
      gscli eval operators/D12-D6.h5
      gscli eval --catalog                 # every file in operators/ (or $GSCLI_STORE)
      gscli eval --catalog --out ops --json
    """
    if catalog and files:
        raise click.UsageError("give FILEs or --catalog, not both")
    if not catalog and not files:
        raise click.UsageError("give one or more operator FILEs, or --catalog for every file in the store")
    paths = store_files(out) if catalog else list(files)
    with progress_bar("evaluating", len(paths), lambda path: path.name) as progress:
        reports = evaluate_store(paths, signals=signals, seed=seed, progress=progress)
    if as_json:
        print_json({"passed": all(r.passed for r in reports), "files": [r.as_dict() for r in reports]})
    else:
        console = stdout_console()
        for r in reports:
            if verbose or len(reports) == 1 or not r.passed:
                _print_report(console, r, verbose)
        if len(reports) > 1:
            console.print(_summary_table(reports))
    bad = [r for r in reports if not r.passed]
    if bad:
        lines = [f"{r.operator or r.path.name} ({r.path}): {f}" for r in bad for f in r.failures]
        raise CheckError(f"{len(bad)} of {len(reports)} operator file(s) failed:\n  " + "\n  ".join(lines))
