"""``gscli inspect``: what an operator file holds, in tables (and a PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gscli.cli._app import main
from gscli.cli._common import add_facts, json_option, plain, plot_option, print_json, stdout_console, stored_checks_text
from gscli.fileformat import read_operator
from gscli.inspect import summarize
from gscli.store import check_store_name


def _elements_table(summary: dict[str, Any], width: int) -> Table:
    """H's elements in H's order, in as many side-by-side column groups (of about 20 rows) as fit in ``width``."""
    elements = summary["elements"]
    planar = any(e["name_in_h"] != e["name"] for e in elements)
    group_width = 14 + max(len(e["name"]) for e in elements) + (max(len(e["name_in_h"]) for e in elements) + 3) * planar
    groups = max(1, min(-(-len(elements) // 20), width // group_width))
    rows = -(-len(elements) // groups)
    title = plain(f"elements of {summary['subgroup']} inside {summary['group']} (in {summary['subgroup']}'s order)")
    table = Table(title=title, title_justify="left", min_width=len(title))
    for _ in range(groups):
        table.add_column("h", justify="right", style="dim")
        if planar:
            table.add_column(plain(f"in {summary['subgroup']}"))
        table.add_column("in G", justify="right")
        table.add_column(plain(f"element of {summary['group']}"), no_wrap=True)
    for r in range(rows):
        cells: list[Text] = []
        for c in range(groups):
            i = c * rows + r
            if i < len(elements):
                e = elements[i]
                cells += [plain(e["h"])] + ([plain(e["name_in_h"])] if planar else []) + [plain(e["g"]), plain(e["name"])]
            else:
                cells += [Text()] * (4 if planar else 3)
        table.add_row(*cells)
    return table


def _bands_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Laplacian bands (frequency = eigenvalue of the Cayley-graph Laplacian)", title_justify="left")
    for col in ("frequency", "dimension", "kept", "kept fraction", "plain subsampling folds"):
        table.add_column(col, justify="right")
    for b in summary["bands"]:
        style = "" if b["kept"] == b["dimension"] else "yellow" if b["kept"] else "dim"
        folded = b.get("folded_plain")
        table.add_row(f"{b['frequency']:.4f}", str(b["dimension"]), str(b["kept"]), f"{b['kept_fraction']:.2f}",
                      "" if folded is None else f"{folded:.2f}", style=style)
    return table


def _facts(summary: dict[str, Any]) -> Table:
    c, p, ck = summary["conditioning"], summary["provenance"], summary["checksum"]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    if ck["status"] == "verified":  # read_operator checked the whole-file digest and the dataset checksum
        status = Text("verified", style="green")
    else:
        status = Text.assemble(("NOT VERIFIED", "red"), f" ({ck['status']}; computed {ck['computed']})")
    stored = summary["stored_checks"]
    cost = summary["aliasing_cost"]
    rows = [
        ("reconstruction", f"||U||_2 = {c['upsample_norm']:.6g}; smallest singular value of S on V = "
                           f"{c['sampling_sigma_min']:.6g} (largest {c['sampling_sigma_max']:.6g}, "
                           f"condition {c['sampling_condition']:.4g})"),
        ("aliasing cost", "tr(P L) = " + (f"{cost:.6g}" if cost is not None else "not stored")),
        ("generators", ", ".join(summary["generators"])
         + (" (escnn's)" if summary.get("cayley_generators", "escnn") == "escnn" else " (chosen with --generators)")),
        ("selection", str(p.get("selection", ""))),
        ("subgroup source", str(p.get("subgroup_source", ""))),
        ("solver", f"{p.get('solver')} (band tol {p.get('solver_band_tol')}, rank tol {p.get('solver_rank_tol')})"),
        ("versions", f"format {p.get('format_version')}, gscli {p.get('gscli_version')}, escnn {p.get('escnn_version')}, "
                     f"numpy {p.get('numpy_version')}, h5py {p.get('h5py_version')}"),
        ("checksum", Text.assemble(status, " ", plain(ck["stored"]))),
        ("stored checks", stored_checks_text(stored)),
    ]
    add_facts(table, rows)
    return table


@main.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@plot_option("Also draw the spectrum, the anti-aliasing response and heat maps of D, U and P to a PNG.")
@json_option
def inspect_command(file: Path, plot: Path | None, as_json: bool) -> None:
    """Show what an operator FILE holds: group, subgroup, element order, bands, conditioning, provenance.

    The file is verified before anything in it is parsed (whole-file sha256, then the dataset
    checksum); a damaged file is refused with one line and exit status 1, never shown. Strings
    from the file are printed as literal text. The numbers are the file's; `gscli eval FILE`
    re-checks every guarantee.

    \b
    Examples:
      gscli inspect operators/D12-D6.h5
      gscli inspect operators/C8-C4.h5 --plot c8.png
      gscli inspect operators/O-T.h5 --json
      gscli inspect operators/Z28x28-Z20x20.h5 --plot z28.png   # a grid operator
      gscli inspect operators/SO3_L3-O.h5 --plot so3.png        # a continuous-group operator
    """
    data = read_operator(file)
    check_store_name(file, data)  # a store name promises its operator and Cayley graph, as for build and eval
    summary = summarize(data)
    if plot is not None:
        from gscli.plots import plot_operator

        summary["plot"] = str(plot_operator(data, plot))
    if as_json:
        print_json(summary)
        return
    _VIEWS[data.kind](summary, plot, stdout_console())


def _print_group(summary: dict[str, Any], plot: Path | None, console: Any) -> None:
    """A finite-group operator: the facts panel, the elements of H, the band table."""
    title = Text.assemble(
        (plain(summary["operator"]).plain, "bold"),
        plain(f": {summary['group']} (|G| = {summary['group_order']}) -> "
              f"{summary['subgroup']} (|H| = {summary['subgroup_order']}), rate {summary['rate']}"),
    )
    console.print(Panel(Group(_facts(summary)), title=title, title_align="left", subtitle=plain(summary["file"])))
    console.print(_elements_table(summary, console.width))
    console.print(_bands_table(summary))
    if plot is not None:
        console.print(plain(f"plot written to {summary['plot']}"))


def _print_grid(summary: dict[str, Any], plot: Path | None, console: Any) -> None:
    """A grid operator (resolution change on image grids, docs/scale.md): sizes, band, conditioning, checks."""
    from gscli.cli._gridview import grid_tables

    for table in grid_tables(summary):
        console.print(table)
    if "plot" in summary:
        console.print(plain(f"plot written to {summary['plot']}"))


def _print_continuous(summary: dict[str, Any], plot: Path | None, console: Any) -> None:
    """A continuous-group operator (docs/continuous.md): the facts, then the band table by Casimir."""
    from gscli.cli._continuousview import continuous_tables

    for table in continuous_tables(summary):
        console.print(table)
    if "plot" in summary:
        console.print(plain(f"plot written to {summary['plot']}"))


#: How each file kind (operator family, :mod:`gscli.families`) is shown in the terminal.
_VIEWS = {"group": _print_group, "grid": _print_grid, "continuous": _print_continuous}
