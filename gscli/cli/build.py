"""``gscli build``: compute, check and write operators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from gscli.build import BUILD_STEPS, BuildResult, build, build_catalog, build_spec
from gscli.catalog import CATALOG, read_catalog
from gscli.cli._app import main
from gscli.cli._common import (
    json_option,
    out_option,
    parse_group_or_operator,
    print_json,
    progress_bar,
    stdout_console,
)
from gscli.errors import shorten
from gscli.families import FAMILIES, FINITE, family_of
from gscli.specs import OperatorSpec, SubgroupSpec


def _results_table(results: list[BuildResult]) -> Table:
    table = Table(title="gscli build", title_justify="left")
    for col, kw in (("operator", {}), ("rate", {"justify": "right"}), ("status", {}), ("worst check error", {"justify": "right"}),
                    ("seconds", {"justify": "right"}), ("file", {})):
        table.add_column(col, **kw)
    for r in results:
        worst = max((c["error"] for c in r.checks if c["name"] != "subgroup_homomorphism"), default=float("nan"))
        style = {"built": "green", "rebuilt": "yellow", "up-to-date": "dim"}.get(r.status, "")
        table.add_row(str(r.spec), str(r.spec.rate), f"[{style}]{r.status}[/]", f"{worst:.1e}",
                      f"{r.seconds:.3f}", str(r.path))
    return table


@main.command("build")
@click.argument("group", required=False, metavar="[GROUP]")
@click.option("--rate", "-r", type=click.IntRange(min=1), help="Downsampling rate R = |G|/|H| (a divisor of |G|).")
@click.option("--subgroup", "-s", "subgroup", metavar="TYPE",
              help="Subgroup type, e.g. D6, C12, T, O, D4h. Needed when several types have the same rate.")
@out_option
@click.option("--catalog", "catalog", type=click.Path(dir_okay=False, path_type=Path),
              help="Catalog file to build when GROUP is absent [default: OUT/catalog.txt, else the catalog shipped with gscli].")
@click.option("--force", is_flag=True, help="Rebuild and replace files that exist, even up-to-date ones.")
@click.option("--generators", "generators", metavar="LIST",
              help="Cayley-graph generators whose Laplacian defines frequency: element names or indices, "
                   "comma-separated, e.g. 'r,r s' for D_N [default: escnn's, e.g. r,s]. They must generate "
                   "GROUP; another choice is written to G-H_g<i>_<j>.h5 (element indices).")
@json_option
@click.pass_context
def build_command(ctx: click.Context, group: str | None, rate: int | None, subgroup: str | None, out: str,
                  catalog: Path | None, force: bool, generators: str | None, as_json: bool) -> None:
    """Build operators and write them to OUT as <G>-<H>.h5 (HDF5).

    GROUP is C<N>, D<N>, O, Oh, I or Ih; name H with --subgroup TYPE, or give only --rate R and the
    least-aliasing subgroup of index R is chosen (smallest tr(P L)). Copies tied on cost (the three
    C4 of O tie exactly) go first to the copy escnn can continue on, the fiber group of one of
    escnn's 3-D gspaces (O>C4: the C4 about z, rot2dOnR3(4); the file records it as escnn_gspace),
    then to the copy escnn's group names by a subgroup id (O>C3: O.subgroup((False, 3))), then by
    type name, then by element indices. GROUP may also be written G>H (e.g. 'D12>D6', quoted) or
    G-H (D12-D6).

    A grid operator (anti-aliased resolution change of images, docs/scale.md) is written
    FINE>COARSE with grids Z<N> (1-D), Z<N>x<N> (2-D), Z<N>x<N>x<N> (3-D) or Z<N>^2, finer grid
    first: 'Z28x28>Z20x20' (or Z28x28-Z20x20) writes Z28x28-Z20x20.h5 holding the downscaling,
    the upscaling and their projector, after checking its identities (docs/scale.md).

    A continuous-group operator (band-limited SO(2), O(2), SO(3), O(3) fields sampled on a finite
    subgroup, docs/continuous.md) is written G_L<L>>H: 'SO3_L3>O' (or SO3_L3-O) writes SO3_L3-O.h5
    holding the sampling, the anti-aliased downsampling, the upsampling and the projector.

    Without GROUP, every operator of the catalog (OUT/catalog.txt, else the default catalog that
    ships with gscli) is built into OUT; up-to-date files are kept unless --force. Every operator is checked (projector, reconstruction, H-equivariance,
    Laplacian grading, FFT for cyclic groups) before it is written: a failure writes nothing and
    exits with status 1.

    \b
    Examples:
      gscli build D12 --rate 2             # chooses D6 or C12 by least aliasing
      gscli build D12 --subgroup C12
      gscli build O --rate 2 --json        # O > T
      gscli build D12 --rate 2 --generators 'r,r s'   # another Cayley graph: another D6 copy
      gscli build Z28x28-Z20x20            # images 28x28 -> 20x20 and back
      gscli build 'SO3_L3>O'               # SO(3) fields of degree <= 3 onto the octahedral group
      gscli build --out /tmp/ops --force   # the catalog, rebuilt elsewhere
    """
    folder = Path(out)
    if group is None:
        if rate is not None or subgroup is not None or generators is not None:
            raise click.UsageError("--rate, --subgroup and --generators need a GROUP (without GROUP the catalog is built)")
        specs = read_catalog(catalog if catalog is not None else _default_catalog(folder))
        with progress_bar("building", len(specs), str) as progress:
            results = build_catalog(specs, out=folder, force=force, progress=progress)
    else:
        if catalog is not None:
            raise click.UsageError("--catalog is only used without GROUP")
        other = _other_family_spec(group)  # e.g. a grid operator Z28x28>Z20x20: named by its spec alone
        if other is not None:
            family = family_of(other)
            if generators is not None:
                raise click.UsageError(f"--generators chooses a group's Cayley graph; {family.plural} take none")
            if rate is not None or subgroup is not None:
                raise click.UsageError(f"--rate and --subgroup are for group operators; the {family.noun} {other} "
                                       f"is named by {family.named_by}")
            results = [build_spec(other, out=folder, force=force)]
            _print_results(results, folder, as_json, group)
            return
        parsed = parse_group_or_operator(group)
        sub = SubgroupSpec.parse(subgroup) if subgroup is not None else None
        if isinstance(parsed, OperatorSpec):
            if sub is not None and sub != parsed.subgroup:
                raise click.UsageError(f"GROUP {shorten(group)} names subgroup {parsed.subgroup} but --subgroup is {sub}")
            parsed, sub = parsed.group, parsed.subgroup
        if rate is None and sub is None:
            raise click.UsageError(f"give --rate R or --subgroup TYPE for {parsed} (see: gscli subgroups {parsed})")
        with progress_bar(f"building {parsed}:", len(BUILD_STEPS), str) as bar:
            results = [build(parsed, rate, sub, out=folder, force=force, progress=_steps(bar),
                             generators=generators)]
    _print_results(results, folder, as_json, group)


def _print_results(results: list, folder: Path, as_json: bool, group: str | None) -> None:
    if as_json:
        print_json({"store": str(folder), "operators": [r.as_dict() for r in results]})
        return
    console = stdout_console()
    console.print(_results_table(results))
    if group is not None and results[0].selection:
        console.print(f"subgroup {results[0].spec.subgroup}: {results[0].selection}")


def _other_family_spec(text: str) -> Any | None:
    """The spec ``text`` names in a family other than finite groups (whose GROUP argument takes options), else ``None``."""
    for family in FAMILIES:
        if family is not FINITE:
            spec = family.parse(text)
            if spec is not None:
                return spec
    return None


def _default_catalog(folder: Path) -> Path:
    """OUT/catalog.txt if there is one, else the default catalog shipped with gscli."""
    own = folder / "catalog.txt"
    return own if own.exists() else CATALOG


def _steps(bar: Callable[[Any, Any], None]) -> Callable[[str], None]:
    """Adapt ``progress_bar``'s (item, result) callback to build's one-call-per-step progress."""
    started: list[str] = []

    def step(name: str) -> None:
        if started:
            bar(started[-1], "done")
        started.append(name)
        bar(name, None)

    return step
