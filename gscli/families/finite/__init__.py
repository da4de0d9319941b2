"""The finite-group family: a finite group G onto a subgroup H (``D12>D6``, ``O>T``; files of kind ``group``).

The mathematics is DESIGN §3: the subgroup choice and the exact solver (:mod:`._build`), the
re-derived guarantees (:mod:`._checks`), what anti-aliasing buys on signals (:mod:`._experiments`),
the summary (:mod:`._summary`) and the figure (:mod:`._plot`). This object is what the rest of gscli
sees of them (:class:`gscli.families.Family`); its modules load on first use, so reading a file
needs neither escnn nor matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gscli.checks import Check
from gscli.fileformat import OperatorData
from gscli.specs import OperatorSpec

__all__ = ["FINITE", "FiniteFamily"]


class FiniteFamily:
    """Operators from a finite group G onto a subgroup H (see :class:`gscli.families.Family`)."""

    name = "finite"
    kind = "group"
    noun = "group operator"
    plural = "group operators (G>H)"
    named_by = "its group and subgroup"
    grammar = "G>H with G one of C<N>, D<N>, O, Oh, I, Ih (e.g. D12>D6)"

    def parse(self, text: str) -> OperatorSpec | None:
        return None if text.strip()[:1] in ("Z", "z") else OperatorSpec.parse(text)

    def owns(self, spec: Any) -> bool:
        return isinstance(spec, OperatorSpec)

    def precheck(self, spec: OperatorSpec) -> None:
        from gscli.families.finite._build import _check_numbers

        _check_numbers(spec.group, None, spec.subgroup)

    def validate(self, spec: OperatorSpec) -> None:
        from gscli.families.finite._build import validate_request

        validate_request(spec.group, None, spec.subgroup)

    def build(self, spec: OperatorSpec, progress: Callable[[str], None] | None = None) -> Any:
        from gscli.families.finite._build import build_operator

        return build_operator(spec.group, None, spec.subgroup, progress)

    def file_status(self, path: Path, spec: OperatorSpec, key: Any = None) -> tuple[OperatorData | None, str]:
        from gscli.families.finite._build import _file_status

        return _file_status(path, spec, key)

    def result(self, spec: OperatorSpec, path: Path, status: str, seconds: float, *, built: Any = None,
               data: OperatorData | None = None, checksum: str = "", selection: str | None = None) -> Any:
        from gscli.families.finite._build import BuildResult, _bands_of

        if data is not None:  # an up-to-date file: its own record, or this request's reason when it was computed
            if selection is None:
                selection = f"up to date, kept as built: {data.attrs.get('selection', '')}"
            return BuildResult(spec, path, status, seconds, selection, data.checks, data.attrs["checksum"],
                               _bands_of(data["bands"]))
        return BuildResult(spec, path, status, seconds, built.selection, [c.as_dict() for c in built.checks],
                           checksum, _bands_of(built.datasets()["bands"]))

    def check(self, data: OperatorData, seed: int = 0) -> list[Check]:
        from gscli.families.finite._checks import check_file

        return check_file(data, seed)

    def experiments(self, data: OperatorData, seed: int = 0, images: bool = True) -> tuple[list, list[Check], list[str]]:
        from gscli.families.finite._experiments import signal_experiments

        return signal_experiments(data, seed, images)

    def summarize(self, data: OperatorData) -> dict[str, Any]:
        from gscli.families.finite._summary import summarize

        return summarize(data)

    def figure(self, data: OperatorData) -> Any:
        from gscli.families.finite._plot import operator_figure

        return operator_figure(data)


#: The finite-group family.
FINITE = FiniteFamily()

