"""Terminal tables of a grid-operator summary (rich; the view behind ``gscli inspect`` on grid files)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from gscli.cli._common import add_facts, stored_checks_text
from gscli.errors import printable

__all__ = ["grid_tables"]


def _frequencies(kept: list[int]) -> str:
    return f"{kept[0]} .. {kept[-1]}" if len(kept) > 1 else str(kept[0])


def _number(value: Any) -> float:
    """A stored check's number, or NaN when the file holds something else there."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def grid_tables(summary: dict[str, Any]) -> list[Table]:
    """The tables ``gscli inspect`` prints for :func:`gscli.families.grid.summarize_grid`'s result."""
    facts = Table(title=f"{summary['operator']}: anti-aliased resolution change, {summary['dims']}-D periodic grid",
                  title_justify="left", show_header=False)
    facts.add_column(style="bold")
    facts.add_column()
    p, ck, stored = summary["provenance"], summary["checksum"], summary["stored_checks"]
    rows = [
        ("file", str(summary["file"])),
        ("grids", (f"{'x'.join(map(str, summary['fine']))} -> {'x'.join(map(str, summary['coarse']))} "
                   f"(ratio {summary['rate']}); the file holds D (down), U = (N/M) D^T (up) and U D per axis")),
        ("construction", (f"{p.get('construction')} (closed form, docs/scale.md), format {p.get('format_version')}, gscli "
                          f"{p.get('gscli_version')}, numpy {p.get('numpy_version')}, h5py {p.get('h5py_version')}")),
        ("checksum", Text.assemble(("verified", "green") if ck["status"] == "verified" else ("NOT VERIFIED", "red"),
                                   " " + printable(ck["stored"]))),
        ("stored checks", stored_checks_text(stored)),
    ]
    add_facts(facts, rows)

    axes = Table(title="per axis: sizes, kept band, conditioning", title_justify="left")
    for col in ("axis", "N -> M", "ratio", "M | N", "band |k| <= h", "kept", "Nyquist M/2",
                "||D||_2", "||U||_2", "rank D", "cond. on band"):
        axes.add_column(col, justify="left" if col in ("axis",) else "right")
    for i, ax in enumerate(summary["axes"]):
        c = ax["conditioning"]
        axes.add_row(str(i), f"{ax['fine']} -> {ax['coarse']}", ax["ratio"], "yes" if ax["divides"] else "no",
                     f"h = {ax['band_limit']}: {_frequencies(ax['kept_frequencies'])}", str(ax["kept"]),
                     "dropped" if ax["dropped_nyquist"] else "(odd M)", f"{c['downsample_norm']:.6g}",
                     f"{c['upsample_norm']:.6g}", str(c["rank"]), f"{c['band_condition']:.6g}")

    checks = Table(title="checks measured at build time (gscli eval re-measures them from the file)", title_justify="left")
    for col, justify in (("check", "left"), ("error", "right"), ("tolerance", "right"), ("", "left"), ("what", "left")):
        checks.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in stored["checks"]:
        verdict = "[green]ok[/]" if c.get("passed") else "[bold red]FAILED[/]"
        checks.add_row(Text(printable(c.get("name"))), f"{_number(c.get('error')):.2e}",
                       f"{_number(c.get('tolerance')):.0e}", verdict, Text(printable(c.get("detail", ""))))
    return [facts, axes, checks]
