"""The continuous-group family: band-limited fields of SO(2), O(2), SO(3), O(3) sampled on a finite
subgroup H (``SO3_L3>O``, ``SO2_L5>C8``; files of kind ``continuous``).

The mathematics is DESIGN §9 (docs/continuous.md): the band walk by Casimir (:mod:`._solver`), the
build, file and subgroup listing (:mod:`._build`), the guarantees measured from the arrays
(:mod:`._checks`), the summary (:mod:`._summary`) and the figure (:mod:`._plot`). What escnn is asked
is in :mod:`gscli._escnn_continuous`; the torch layers in :mod:`gscli.nn._continuous`. This object is
what the rest of gscli sees of them (:class:`gscli.families.Family`); its modules load on first use,
so reading or inspecting a file needs neither escnn nor matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gscli.checks import Check
from gscli.errors import FormatError
from gscli.fileformat import OperatorData, read_operator
from gscli.specs import ContinuousGroupSpec, ContinuousOperatorSpec, is_continuous_text

__all__ = ["CONTINUOUS", "ContinuousFamily"]


class ContinuousFamily:
    """Band-limited fields of a continuous group onto a finite subgroup (see :class:`gscli.families.Family`)."""

    name = "continuous"
    kind = "continuous"
    noun = "continuous-group operator"
    plural = "continuous-group operators (SO3_L<L>>H)"
    named_by = "its group, band limit and subgroup"
    grammar = "<G>_L<L>>H with G one of SO2, O2, SO3, O3 and L >= 0 (e.g. SO3_L3>O, SO2_L5>C8)"

    def parse(self, text: str) -> ContinuousOperatorSpec | None:
        return ContinuousOperatorSpec.parse(text) if is_continuous_text(text) else None

    def parse_group(self, text: str) -> ContinuousGroupSpec | None:
        """The band-limited group ``text`` names (``SO3_L2``), ``None`` when not in this grammar (``gscli subgroups``)."""
        return ContinuousGroupSpec.parse(text) if is_continuous_text(text) else None

    def owns(self, spec: Any) -> bool:
        return isinstance(spec, ContinuousOperatorSpec)

    def precheck(self, spec: ContinuousOperatorSpec) -> None:
        return None  # the spec's own checks (family, subgroup, size) ran when it was made

    def validate(self, spec: ContinuousOperatorSpec) -> None:
        from gscli.families.continuous._build import check_memory

        check_memory(spec)

    def build(self, spec: ContinuousOperatorSpec, progress: Callable[[str], None] | None = None) -> Any:
        from gscli.families.continuous._build import build_continuous

        if progress is not None:
            progress("sampling and band walk")
        return build_continuous(spec, refuse=False)  # the pipeline refuses failed checks and writes nothing

    def file_status(self, path: Path, spec: ContinuousOperatorSpec, key: Any = None) -> tuple[OperatorData | None, str]:
        from gscli.families.continuous._build import SAMPLING_CONVENTION, SOLVER

        try:
            data = read_operator(path)
        except FormatError as exc:
            return None, str(exc)
        if data.kind != self.kind or data.spec != spec:
            return None, f"{path} holds {data.spec}, not {spec}"
        if data.attrs.get("solver") != SOLVER or data.attrs.get("sampling_convention") != SAMPLING_CONVENTION:
            return None, f"{path} was made by solver {data.attrs.get('solver')!r}, not {SOLVER!r}"
        if not all(c.get("passed") for c in data.checks):
            return None, f"{path} records failed checks"
        return data, ""

    def result(self, spec: ContinuousOperatorSpec, path: Path, status: str, seconds: float, *, built: Any = None,
               data: OperatorData | None = None, checksum: str = "", selection: str | None = None) -> Any:
        from gscli.families.continuous._build import ContinuousBuildResult, ContinuousOperator

        op = ContinuousOperator.from_data(data) if data is not None else built
        checks = data.checks if data is not None else [c.as_dict() for c in built.checks]
        return ContinuousBuildResult(spec, path, status, seconds, checks, data.attrs["checksum"] if data is not None else checksum,
                                     op.mode, [_band_row(b, c) for b, c in zip(op.bands, op.copies)])

    def check(self, data: OperatorData, seed: int = 0) -> list[Check]:
        from gscli.families.continuous._eval import check_file

        return check_file(data)[0]

    def experiments(self, data: OperatorData, seed: int = 0, images: bool = True) -> tuple[list, list[Check], list[str]]:
        from gscli.families.continuous._eval import escnn_note, mode_note

        return [], [], [note for note in (mode_note(data), escnn_note()) if note]

    def summarize(self, data: OperatorData) -> dict[str, Any]:
        from gscli.families.continuous._summary import summarize_continuous

        return summarize_continuous(data)

    def figure(self, data: OperatorData) -> Any:
        from gscli.families.continuous._plot import continuous_figure

        return continuous_figure(data)

    def list_subgroups(self, group: ContinuousGroupSpec) -> list[dict]:
        """``gscli subgroups SO3_L2``: the finite subgroups, their orders, the rank of sampling on them and the mode."""
        from gscli.families.continuous._build import continuous_subgroups

        return continuous_subgroups(group)


def _band_row(band: Any, copies: int) -> dict[str, Any]:
    return {"irrep": list(band.irrep), "casimir": band.casimir, "dimension": band.dimension, "copies": copies,
            "kept": band.kept}


#: The continuous-group family.
CONTINUOUS = ContinuousFamily()
