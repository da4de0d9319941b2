"""The grid family: resolution change on periodic image grids (``Z28x28>Z20x20``; files of kind ``grid``).

DESIGN §7: the periodic grid Z_N is the cyclic group C_N, and an ideal low-pass resampling N → M is
anti-aliased sampling on it. The closed-form arrays and their checks (:mod:`._operator`), the
summary (:mod:`._summary`), the experiment on real images (:mod:`._experiments`) and the figure
(:mod:`._plot`), seen by the rest of gscli through one object (:class:`gscli.families.Family`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gscli.checks import Check
from gscli.errors import DependencyError
from gscli.fileformat import OperatorData
from gscli.specs import GridOperatorSpec

from gscli.families.grid._operator import (
    GRID_TOLERANCES,
    GridBuildResult,
    build_grid_operator,
    check_grid,
    estimate_grid_memory,
    grid_matrix,
)
from gscli.families.grid._summary import summarize_grid

__all__ = ["GRID", "GridFamily", "GRID_TOLERANCES", "GridBuildResult", "build_grid_operator", "check_grid",
           "estimate_grid_memory", "grid_matrix", "summarize_grid"]


class GridFamily:
    """Resolution changes between periodic grids (see :class:`gscli.families.Family`)."""

    name = "grid"
    kind = "grid"
    noun = "grid operator"
    plural = "grid operators (Z<N>)"
    named_by = "its sizes"
    grammar = "Z<N>[x<N>...]>Z<M>[x<M>...], finer grid first (e.g. Z28x28>Z20x20)"

    def parse(self, text: str) -> GridOperatorSpec | None:
        return GridOperatorSpec.parse(text) if text.strip()[:1] in ("Z", "z") else None

    def owns(self, spec: Any) -> bool:
        return isinstance(spec, GridOperatorSpec)

    def precheck(self, spec: GridOperatorSpec) -> None:
        from gscli.families.grid._operator import check_memory

        check_memory(spec)  # before the store is touched: a request this machine cannot meet writes nothing

    def validate(self, spec: GridOperatorSpec) -> None:
        return None

    def build(self, spec: GridOperatorSpec, progress: Callable[[str], None] | None = None) -> Any:
        from gscli.families.grid._operator import build_grid_operator

        return build_grid_operator(spec)

    def file_status(self, path: Path, spec: GridOperatorSpec, key: Any = None) -> tuple[OperatorData | None, str]:
        from gscli.families.grid._operator import file_status

        return file_status(path, spec, key)

    def result(self, spec: GridOperatorSpec, path: Path, status: str, seconds: float, *, built: Any = None,
               data: OperatorData | None = None, checksum: str = "", selection: str | None = None) -> Any:
        from gscli.families.grid._operator import GridBuildResult

        if data is not None:
            return GridBuildResult(spec, path, status, seconds, data.checks, data.attrs["checksum"])
        return GridBuildResult(spec, path, status, seconds, [c.as_dict() for c in built.checks], checksum)

    def check(self, data: OperatorData, seed: int = 0) -> list[Check]:
        from gscli.families.grid._operator import check_grid
        from gscli.families.grid._summary import read_grid

        data = read_grid(data)
        return check_grid(data.spec, data.arrays, seed)

    def experiments(self, data: OperatorData, seed: int = 0, images: bool = True) -> tuple[list, list[Check], list[str]]:
        from gscli.families.grid._experiments import GRID_NOTE, grid_signal_experiment

        signals, notes = [], []
        if images:
            try:
                signals = [grid_signal_experiment(data)]
            except DependencyError as exc:
                notes.append(f"image signals skipped: {exc}")
            notes.append(GRID_NOTE)
        return signals, [], notes

    def summarize(self, data: OperatorData) -> dict[str, Any]:
        from gscli.families.grid._summary import summarize_grid

        return summarize_grid(data)

    def figure(self, data: OperatorData) -> Any:
        from gscli.families.grid._plot import grid_figure
        from gscli.families.grid._summary import read_grid

        return grid_figure(read_grid(data))


#: The grid family.
GRID = GridFamily()
