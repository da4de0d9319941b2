"""``gscli subgroups``: what a group can be downsampled to, and at what aliasing cost."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from gscli.build import candidates, choose
from gscli.cli._app import main
from gscli.cli._common import json_option, print_json, stdout_console
from gscli.families import FAMILIES
from gscli.specs import GroupSpec


def subgroup_rows(group: GroupSpec) -> list[dict]:
    """One row per (rate, subgroup type): number of copies, least cost, and whether --rate picks it."""
    rows: dict[tuple[int, str], dict] = {}
    everything = candidates(group)
    for c in everything:
        rate = group.order // c.subgroup.order
        row = rows.setdefault((rate, c.subgroup.type), {
            "rate": rate, "subgroup": c.subgroup.type, "order": c.subgroup.order,
            "copies": 0, "aliasing_cost": c.cost, "chosen_for_rate": False,
        })
        row["copies"] += 1
        row["aliasing_cost"] = min(row["aliasing_cost"], c.cost)
    for rate in sorted({r for r, _ in rows}):
        chosen, _ = choose([c for c in everything if c.subgroup.order * rate == group.order])
        rows[(rate, chosen.subgroup.type)]["chosen_for_rate"] = True
    for row in rows.values():
        row["aliasing_cost"] = round(abs(row["aliasing_cost"]) if abs(row["aliasing_cost"]) < 1e-9 else row["aliasing_cost"], 9)
    return sorted(rows.values(), key=lambda r: (r["rate"], r["aliasing_cost"], r["subgroup"]))


@main.command("subgroups")
@click.argument("group", metavar="GROUP")
@json_option
def subgroups_command(group: str, as_json: bool) -> None:
    """List every (rate, subgroup type) GROUP can be downsampled to.

    For each: how many copies of that type G holds, the least aliasing cost tr(P L) among them (the
    Laplacian energy the anti-aliased space keeps: smaller is smoother), and which type
    `gscli build GROUP --rate R` picks.

    \b
    A band-limited continuous group (``SO3_L2``, docs/continuous.md) lists the finite subgroups it
    can be sampled on: their order, escnn's id, the rank of sampling on them at that L and the mode
    (anti-aliasing, nothing to anti-alias, or rank-deficient: that L cannot be sampled at full rank).

    \b
    Examples:
      gscli subgroups D12
      gscli subgroups SO3_L2
    """
    for family in FAMILIES:  # a family with its own group grammar lists its own subgroups
        parse_group = getattr(family, "parse_group", None)
        other = parse_group(group) if parse_group is not None else None
        if other is not None:
            _print_other(family, other, as_json)
            return
    spec = GroupSpec.parse(group)
    rows = subgroup_rows(spec)
    if as_json:
        print_json({"group": str(spec), "order": spec.order, "subgroups": rows})
        return
    table = Table(title=f"subgroups of {spec} (|G| = {spec.order})", title_justify="left")
    for col in ("rate", "subgroup", "|H|", "copies", "aliasing cost tr(PL)", "--rate picks"):
        table.add_column(col, justify="right" if col not in ("subgroup",) else "left")
    for r in rows:
        table.add_row(str(r["rate"]), r["subgroup"], str(r["order"]), str(r["copies"]), f"{r['aliasing_cost']:.6g}",
                      "✓" if r["chosen_for_rate"] else "")
    stdout_console().print(table)


def _print_other(family: Any, group: Any, as_json: bool) -> None:
    """The subgroups of a continuous group (``SO3_L2``): order, escnn id, rank of sampling, mode."""
    rows = family.list_subgroups(group)
    dim = group.dimension
    if as_json:
        print_json({"group": str(group), "family": family.name, "dimension": dim, "subgroups": rows})
        return
    table = Table(title=f"finite subgroups of {group.name} for fields of degree <= {group.L} (dim {dim})",
                  title_justify="left")
    for col in ("subgroup", "|H|", "escnn id", "rank", "mode"):
        table.add_column(col, justify="left" if col in ("subgroup", "escnn id", "mode") else "right")
    for r in rows:
        table.add_row(r["subgroup"], str(r["order"]), r["escnn_id"], str(r["rank"]), r["mode"],
                      style="yellow" if r["mode"] == "rank-deficient" else "")
    console = stdout_console()
    console.print(table)
    for r in rows:
        if r["mode"] == "rank-deficient":
            console.print(f"{r['subgroup']}: sampling has rank {r['rank']} < min(|H| = {r['order']}, dim = {dim}): "
                          f"L = {group.L} cannot be sampled on {r['subgroup']} at full rank"
                          + (f"; the smallest L that works is {r['smallest_L']}" if r.get("smallest_L") else ""))
