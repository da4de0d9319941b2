"""Operator families: the one place that knows every kind of operator gscli builds.

A *family* is one kind of operator with its own spec grammar, arrays and guarantees. Each gives one
object (:class:`Family`) that parses its specs, builds and checks its arrays, names its file kind,
re-measures its guarantees (``eval``), summarises a file (``inspect``) and draws it (``--plot``).
``gscli.build``, ``gscli.evaluate``, ``gscli.inspect``, ``gscli.plots``, the catalog and the CLI
dispatch through :func:`family_of` and :func:`parse_spec`; none of them branches on spec types.

Today's families: :data:`FINITE` (a finite group G onto a subgroup H, ``D12>D6``), :data:`GRID`
(a resolution change on periodic image grids, ``Z28x28>Z20x20``) and :data:`CONTINUOUS` (band-limited
fields of SO(2), O(2), SO(3), O(3) sampled on a finite subgroup, ``SO3_L3>O``). Adding one:
docs/architecture.md.

>>> parse_spec("D12>D6"), parse_spec("Z28^2>Z20^2"), parse_spec("SO3_L3>O")
(OperatorSpec('D12>D6'), GridOperatorSpec('Z28x28>Z20x20'), ContinuousOperatorSpec('SO3_L3>O'))
>>> family_of(parse_spec("Z28x28>Z20x20")).name, family_of("group").name, family_of("continuous").name
('grid', 'finite', 'continuous')
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gscli.checks import Check
from gscli.errors import SpecError, shorten
from gscli.families.continuous import CONTINUOUS
from gscli.families.finite import FINITE
from gscli.families.grid import GRID
from gscli.fileformat import OperatorData
from gscli.specs import parse_operator_spec

__all__ = ["Family", "Built", "FAMILIES", "FINITE", "GRID", "CONTINUOUS", "family_of", "parse_spec"]


class Built(Protocol):
    """A computed, checked operator, ready to be written by the build pipeline."""

    spec: Any
    checks: tuple[Check, ...]
    selection: str  #: why this operator (the subgroup choice), "" when there was no choice
    suffix: str  #: appended to the file's stem (custom Cayley generators), "" by default
    status_key: Any  #: what :meth:`Family.file_status` must match besides the spec (custom generators)

    def datasets(self) -> dict[str, np.ndarray]: ...

    def attributes(self) -> dict[str, Any]: ...


class Family(Protocol):
    """What every operator family provides (see the module docstring)."""

    name: str  #: short name: "finite", "grid", "continuous"
    kind: str  #: the ``kind`` attribute of its files (gscli.fileformat)
    grammar: str  #: its spec grammar, for messages
    noun: str  #: what one operator is called in messages: "grid operator"
    plural: str  #: and several: "grid operators (Z<N>)"
    named_by: str  #: what names one: "its sizes"

    def parse(self, text: str) -> Any | None:
        """The spec, ``None`` when ``text`` is not in this family's grammar, :class:`SpecError` when it is but is invalid."""

    def owns(self, spec: Any) -> bool:
        """Whether ``spec`` is one of this family's specs."""

    def precheck(self, spec: Any) -> None:
        """Cheap checks before anything is read or locked (sizes, orders); raises a GscliError."""

    def validate(self, spec: Any) -> None:
        """The checks before a build takes its lock (the request is possible, the memory suffices)."""

    def build(self, spec: Any, progress: Callable[[str], None] | None = None) -> Built:
        """Compute the operator in float64 and measure every check."""

    def file_status(self, path: Path, spec: Any, key: Any = None) -> tuple[OperatorData | None, str]:
        """``(data, "")`` when ``path`` is a verified, current file of ``spec``; else ``(None, why not)``."""

    def result(self, spec: Any, path: Path, status: str, seconds: float, *, built: Built | None = None,
               data: OperatorData | None = None, checksum: str = "", selection: str | None = None) -> Any:
        """What ``build`` returns for one operator (an object with ``as_dict()``)."""

    def check(self, data: OperatorData, seed: int = 0) -> list[Check]:
        """Every guarantee of a file, re-measured from its arrays (``gscli eval``)."""

    def experiments(self, data: OperatorData, seed: int = 0, images: bool = True) -> tuple[list, list[Check], list[str]]:
        """``(signal results, extra checks, notes)``: what the operator buys over plain subsampling."""

    def summarize(self, data: OperatorData) -> dict[str, Any]:
        """A JSON-serialisable summary of a file (``gscli inspect``)."""

    def figure(self, data: OperatorData) -> Any:
        """A matplotlib figure of a file (``gscli inspect --plot``)."""

    # Optional, for a family whose groups have their own grammar (``gscli subgroups SO3_L2``):
    # ``parse_group(text)`` -> group spec or None, and ``list_subgroups(group)`` -> rows (dicts).


#: Every family, in the order specs are tried (finite groups last: their grammar takes every other text).
FAMILIES: tuple[Family, ...] = (GRID, CONTINUOUS, FINITE)


def parse_spec(text: str) -> Any:
    """The spec ``text`` names, in whichever family's grammar it is written.

    Raises :class:`SpecError` naming every family's grammar when none reads it.
    """
    if not isinstance(text, str):
        return parse_operator_spec(text)  # raises the spec layer's message for a non-string
    for family in FAMILIES:
        spec = family.parse(text)
        if spec is not None:
            return spec
    allowed = "; ".join(f"{f.name}: {f.grammar}" for f in FAMILIES)
    raise SpecError(f"unknown operator {shorten(text)}; allowed: {allowed}")


def family_of(what: Any) -> Family:
    """The family of a spec, of an :class:`OperatorData`, or of a file kind (``"group"``, ``"grid"``)."""
    if isinstance(what, OperatorData):
        what = what.kind
    for family in FAMILIES:
        if what == family.kind if isinstance(what, str) else family.owns(what):
            return family
    raise SpecError(f"no operator family for {shorten(what)}; known kinds: {', '.join(f.kind for f in FAMILIES)}")
