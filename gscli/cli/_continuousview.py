"""Terminal tables of a continuous-group operator summary (rich; ``gscli inspect`` on files of kind ``continuous``)."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table
from rich.text import Text

from gscli.cli._common import add_facts, stored_checks_text
from gscli.cli._gridview import _number
from gscli.errors import printable

__all__ = ["continuous_tables"]


def continuous_tables(summary: dict[str, Any]) -> list[Table]:
    """The tables ``gscli inspect`` prints for :func:`gscli.families.continuous._summary.summarize_continuous`."""
    title = (f"{summary['operator']}: {summary['group_name']} fields of degree <= {summary['L']} "
             f"(dim {summary['dimension']}) sampled on {summary['subgroup']} (|H| = {summary['subgroup_order']})")
    facts = Table(title=printable(title), title_justify="left", show_header=False)
    facts.add_column(style="bold")
    facts.add_column()
    p, ck, stored, c = summary["provenance"], summary["checksum"], summary["stored_checks"], summary["conditioning"]
    rows = [
        ("file", str(summary["file"])),
        ("subgroup", f"{summary['subgroup']}, escnn id {json.dumps(summary['escnn_subgroup_id'])} "
                     f"(G.subgroup(id), H's elements in escnn's order)"),
        ("mode", summary["mode_text"]),
        ("kept", f"{summary['kept']} of {summary['dimension']} coefficient directions"),
        ("reconstruction", f"||U||_2 = {c['upsample_norm']:.6g}; singular values of S on V in "
                           f"[{c['sampling_sigma_min_on_V']:.6g}, {c['sampling_sigma_max_on_V']:.6g}]"),
        ("solver", f"{p.get('solver')} (rank tol {p.get('solver_rank_tol')})"),
        ("versions", f"format {p.get('format_version')}, gscli {p.get('gscli_version')}, escnn {p.get('escnn_version')}, "
                     f"numpy {p.get('numpy_version')}, h5py {p.get('h5py_version')}"),
        ("checksum", Text.assemble(("verified", "green") if ck["status"] == "verified" else ("NOT VERIFIED", "red"),
                                   " " + printable(ck["stored"]))),
        ("stored checks", stored_checks_text(stored)),
    ]
    add_facts(facts, rows)

    bands = Table(title="bands by Casimir (every copy of one irrep; the walk keeps new sample directions)",
                  title_justify="left")
    for col in ("irrep", "Casimir", "dimension", "copies", "kept"):
        bands.add_column(col, justify="left" if col == "irrep" else "right")
    for b in summary["bands"]:
        style = "" if b["kept"] == b["dimension"] else "yellow" if b["kept"] else "dim"
        bands.add_row(Text(printable(json.dumps(b["irrep"]))), f"{_number(b['casimir']):g}", str(b["dimension"]),
                      str(b["copies"]), str(b["kept"]), style=style)
    return [facts, bands]
