"""Group, subgroup and operator specs: short strings that parse into immutable values.

Every spec prints back to the string it was parsed from (in canonical form), so
``parse(str(spec)) == spec`` always holds::

    >>> GroupSpec.parse("D12")
    GroupSpec('D12')
    >>> GroupSpec.parse("D12").order
    24
    >>> OperatorSpec.parse("D12>D6").rate
    2
    >>> OperatorSpec.parse("Oh-O").stem
    'Oh-O'

Grid operators (resolution change on periodic grids, docs/scale.md) are written ``Z<N>`` per grid,
sizes joined by ``x`` for 2-D and 3-D, the finer grid first::

    >>> GridOperatorSpec.parse("Z28^2>Z20^2")
    GridOperatorSpec('Z28x28>Z20x20')
    >>> GridOperatorSpec.parse("Z28x28>Z20x20").stem
    'Z28x28-Z20x20'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gscli.errors import SpecError, shorten

__all__ = [
    "GroupSpec",
    "SubgroupSpec",
    "OperatorSpec",
    "GridSpec",
    "GridOperatorSpec",
    "parse_operator_spec",
    "GROUP_FAMILIES",
    "MAX_GROUP_ORDER",
    "MAX_GRID_SIZE",
]

#: Group families gscli builds, with the grammar of their spec strings.
GROUP_FAMILIES = {
    "C": "cyclic C_N, e.g. C8 (N rotations)",
    "D": "dihedral D_N, e.g. D12 (2N elements: N rotations, N reflections)",
    "O": "octahedral rotations O (24)",
    "Oh": "full octahedral O_h (48)",
    "I": "icosahedral rotations I (60)",
    "Ih": "full icosahedral I_h (120)",
}

#: Largest group order gscli will build: dense |G| x |G| float64 operators stay below ~150 MiB each.
MAX_GROUP_ORDER = 4096

_GROUP_RE = re.compile(r"(?P<family>[CD])(?P<n>[1-9][0-9]{0,5})|(?P<fixed>Oh|O|Ih|I)")
_ALLOWED_GROUPS = "C<N>, D<N> (N >= 1), O, Oh, I or Ih"

# Subgroup types: planar (C_N, D_N) and the Schoenflies point groups found inside O, O_h, I, I_h.
_SUB_RE = re.compile(
    r"(?P<cd>[CD])(?P<n>[1-9][0-9]{0,5})(?P<suffix>[hvd]?)"
    r"|S(?P<s>[1-9][0-9]{0,5})"
    r"|(?P<fixed>Ci|Cs|Td|Th|Oh|Ih|T|O|I)"
)
_ALLOWED_SUBGROUPS = (
    "C<n>, D<n>, and for O/Oh/I/Ih the Schoenflies types C<n>h, C<n>v, D<n>h, D<n>d, S<2n>, "
    "Ci, Cs, T, Td, Th, O, Oh, I, Ih"
)
_FIXED_ORDERS = {"Ci": 2, "Cs": 2, "T": 12, "Td": 24, "Th": 24, "O": 24, "Oh": 48, "I": 60, "Ih": 120}
# Spellings that name the same point group as a canonical one.
_ALIASES = {"C1h": "Cs", "C1v": "Cs", "S2": "Ci"}


def _need_str(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise SpecError(f"{what} spec must be a string, got {type(text).__name__} {shorten(text)}")
    return text.strip()


@dataclass(frozen=True, order=True)
class GroupSpec:
    """A finite group gscli can build: ``C<N>``, ``D<N>``, ``O``, ``Oh``, ``I`` or ``Ih``."""

    family: str
    n: int = 0

    @classmethod
    def parse(cls, text: object) -> GroupSpec:
        s = _need_str(text, "group")
        m = _GROUP_RE.fullmatch(s)
        if m is None:
            hint = ""
            if re.fullmatch(r"[CD][1-9][0-9]*", s):  # more digits than any buildable N
                raise SpecError(f"group {shorten(s)}: N is too large; gscli builds groups of at most "
                                f"{MAX_GROUP_ORDER} elements (C{MAX_GROUP_ORDER}, D{MAX_GROUP_ORDER // 2})")
            if s.lower() in {"c", "d"} or re.fullmatch(r"[cdCD]-?[0-9]+", s):
                hint = " (N must be a positive integer, family letter upper-case, e.g. 'C8')"
            elif s.lower() in {"o", "oh", "i", "ih"}:
                hint = f" (did you mean {s[0].upper() + s[1:].lower()!r}?)"
            raise SpecError(f"unknown group {shorten(s)}{hint}; allowed: {_ALLOWED_GROUPS}")
        if m.group("fixed"):
            return cls(m.group("fixed"))
        return cls(m.group("family"), int(m.group("n")))

    def __post_init__(self) -> None:
        if self.family not in GROUP_FAMILIES:
            raise SpecError(f"unknown group family {shorten(self.family)}; allowed: {', '.join(GROUP_FAMILIES)}")
        if self.family in "CD" and (not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1):
            raise SpecError(f"group {self.family}{self.n}: N must be an integer >= 1")
        if self.family not in "CD" and self.n != 0:
            raise SpecError(f"group {self.family} takes no N (got {self.n})")

    @property
    def order(self) -> int:
        """Number of elements |G|."""
        return {"C": self.n, "D": 2 * self.n, "O": 24, "Oh": 48, "I": 60, "Ih": 120}[self.family]

    @property
    def planar(self) -> bool:
        """True for the planar families C_N and D_N (subgroups are C_M and D_M)."""
        return self.family in ("C", "D")

    def __str__(self) -> str:
        return f"{self.family}{self.n}" if self.family in "CD" else self.family

    def __repr__(self) -> str:
        return f"GroupSpec({str(self)!r})"


@dataclass(frozen=True, order=True)
class SubgroupSpec:
    """The type of a subgroup, e.g. ``C4``, ``D6``, ``T``, ``Td``, ``D4h``."""

    name: str

    @classmethod
    def parse(cls, text: object) -> SubgroupSpec:
        s = _need_str(text, "subgroup")
        s = _ALIASES.get(s, s)
        if _SUB_RE.fullmatch(s) is None:
            raise SpecError(f"unknown subgroup type {shorten(s)}; allowed: {_ALLOWED_SUBGROUPS}")
        return cls(s)

    def __post_init__(self) -> None:
        m = _SUB_RE.fullmatch(self.name) if isinstance(self.name, str) else None
        if m is None or self.name in _ALIASES:
            raise SpecError(f"unknown subgroup type {shorten(self.name)}; allowed: {_ALLOWED_SUBGROUPS}")
        if m.group("s") is not None and int(m.group("s")) % 2:
            raise SpecError(f"subgroup type {self.name!r}: S<k> needs an even k (S4, S6, ...)")
        if m.group("cd") == "C" and m.group("suffix") == "d":
            raise SpecError(f"unknown subgroup type {self.name!r} (C<n> takes the suffix h or v, not d); "
                            f"allowed: {_ALLOWED_SUBGROUPS}")

    @property
    def order(self) -> int:
        """Number of elements |H| of a group of this type."""
        m = _SUB_RE.fullmatch(self.name)
        assert m is not None
        if m.group("fixed"):
            return _FIXED_ORDERS[m.group("fixed")]
        if m.group("s"):
            return int(m.group("s"))
        n = int(m.group("n"))
        factor = {("C", ""): 1, ("C", "h"): 2, ("C", "v"): 2, ("D", ""): 2, ("D", "h"): 4, ("D", "d"): 4}
        key = (m.group("cd"), m.group("suffix"))
        if key not in factor:
            raise SpecError(f"unknown subgroup type {shorten(self.name)}; allowed: {_ALLOWED_SUBGROUPS}")
        return factor[key] * n

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"SubgroupSpec({self.name!r})"


@dataclass(frozen=True, order=True)
class OperatorSpec:
    """A (group, subgroup type) pair, written ``G>H`` (or ``G-H``, the file-name form), e.g. ``D12>D6``."""

    group: GroupSpec
    subgroup: SubgroupSpec

    @classmethod
    def parse(cls, text: object) -> OperatorSpec:
        s = _need_str(text, "operator")
        parts = re.split(r"\s*[>-]\s*", s)
        if len(parts) != 2 or not all(parts):
            raise SpecError(f"operator spec {shorten(s)} must be GROUP>SUBGROUP (or GROUP-SUBGROUP), e.g. 'D12>D6'")
        return cls(GroupSpec.parse(parts[0]), SubgroupSpec.parse(parts[1]))

    def __post_init__(self) -> None:
        g, h = self.group.order, self.subgroup.order
        if g % h:
            raise SpecError(
                f"operator {self}: |{self.subgroup}| = {h} does not divide |{self.group}| = {g}"
            )

    @property
    def rate(self) -> int:
        """Downsampling rate R = |G| / |H|."""
        return self.group.order // self.subgroup.order

    @property
    def stem(self) -> str:
        """File name stem, ``G-H`` (only letters and digits, so it can never leave the store folder)."""
        return f"{self.group}-{self.subgroup}"

    def __str__(self) -> str:
        return f"{self.group}>{self.subgroup}"

    def __repr__(self) -> str:
        return f"OperatorSpec({str(self)!r})"


# --------------------------------------------------------------------------------------------
# Grid operators: resolution change on the periodic grid Z_N (per axis), docs/scale.md.

#: Largest size of one grid axis: the per-axis (N, N) float64 projector stays at 128 MiB.
MAX_GRID_SIZE = 4096

_SIZE = r"[1-9][0-9]{0,5}"
_GRID_RE = re.compile(rf"Z(?P<sizes>{_SIZE}(?:x{_SIZE}){{0,2}})(?:\^(?P<power>[0-9]+))?")
_ALLOWED_GRIDS = f"Z<N> (1-D), Z<N>x<N> (2-D), Z<N>x<N>x<N> (3-D) or Z<N>^2, Z<N>^3, with 1 <= N <= {MAX_GRID_SIZE}"


@dataclass(frozen=True, order=True)
class GridSpec:
    """A periodic grid Z_{N_1} x ... x Z_{N_d} (d = 1 to 3), written ``Z28``, ``Z28x28`` or ``Z28^2``.

    >>> GridSpec.parse("Z28^2"), GridSpec.parse("Z9x12").shape
    (GridSpec('Z28x28'), (9, 12))
    """

    shape: tuple[int, ...]

    @classmethod
    def parse(cls, text: object) -> GridSpec:
        s = _need_str(text, "grid")
        m = _GRID_RE.fullmatch(s)
        if m is None:
            raise SpecError(f"unknown grid {shorten(s)}; allowed: {_ALLOWED_GRIDS}")
        sizes = tuple(int(v) for v in m.group("sizes").split("x"))
        if m.group("power") is not None:
            power = int(m.group("power"))
            if len(sizes) != 1 or not 1 <= power <= 3:
                raise SpecError(f"unknown grid {shorten(s)}: the power form is Z<N>^d with one size N and d = 1, 2 or 3; "
                                f"allowed: {_ALLOWED_GRIDS}")
            sizes = sizes * power
        return cls(sizes)

    def __post_init__(self) -> None:
        shape = self.shape
        if (not isinstance(shape, tuple) or not 1 <= len(shape) <= 3
                or any(isinstance(n, bool) or not isinstance(n, int) for n in shape)):
            raise SpecError(f"grid shape {shorten(shape)} must be a tuple of 1 to 3 integers; allowed: {_ALLOWED_GRIDS}")
        bad = [n for n in shape if not 1 <= n <= MAX_GRID_SIZE]
        if bad:
            raise SpecError(f"grid {str(self)!r}: size {bad[0]} is outside 1..{MAX_GRID_SIZE} (a dense per-axis "
                            f"operator of size N needs 8 N^2 bytes); allowed: {_ALLOWED_GRIDS}")

    @property
    def dims(self) -> int:
        """Number of axes d."""
        return len(self.shape)

    def __str__(self) -> str:
        return "Z" + "x".join(str(n) for n in self.shape)

    def __repr__(self) -> str:
        return f"GridSpec({str(self)!r})"


@dataclass(frozen=True, order=True)
class GridOperatorSpec:
    """Resolution change between two periodic grids, written ``FINE>COARSE``, e.g. ``Z28x28>Z20x20``.

    The finer grid comes first (N >= M on every axis): one operator file holds both directions,
    the downscaling D_{N->M} and the upscaling U_{M->N}. ``FINE-COARSE`` is the file-name form.
    """

    fine: GridSpec
    coarse: GridSpec

    @classmethod
    def parse(cls, text: object) -> GridOperatorSpec:
        s = _need_str(text, "grid operator")
        parts = re.split(r"\s*[>-]\s*", s)
        if len(parts) != 2 or not all(parts):
            raise SpecError(f"grid operator spec {shorten(s)} must be FINE>COARSE (or FINE-COARSE), e.g. 'Z28>Z20' or "
                            f"'Z28x28>Z20x20'; grids: {_ALLOWED_GRIDS}")
        return cls(GridSpec.parse(parts[0]), GridSpec.parse(parts[1]))

    def __post_init__(self) -> None:
        if self.fine.dims != self.coarse.dims:
            raise SpecError(f"grid operator {str(self)!r}: both grids need the same number of axes "
                            f"({self.fine} has {self.fine.dims}, {self.coarse} has {self.coarse.dims})")
        grows = [axis for axis, (n, m) in enumerate(zip(self.fine.shape, self.coarse.shape)) if m > n]
        if grows and len(grows) == self.dims:
            raise SpecError(f"grid operator {str(self)!r}: write the finer grid first (N >= M on every axis): "
                            f"'{self.coarse}>{self.fine}'; its file holds both the downscaling and the upscaling")
        if grows:
            raise SpecError(f"grid operator {str(self)!r}: axis {grows[0]} grows while another shrinks; the finer grid "
                            f"comes first (N >= M on every axis): resample in two steps")

    @property
    def dims(self) -> int:
        """Number of axes d."""
        return self.fine.dims

    @property
    def axes(self) -> tuple[tuple[int, int], ...]:
        """``(N, M)`` per axis."""
        return tuple(zip(self.fine.shape, self.coarse.shape))

    @property
    def rate(self) -> str:
        """Size ratio N/M per axis as a reduced fraction, ``x``-joined when the axes differ (``'7/5'``, ``'2x3/2'``)."""
        from fractions import Fraction

        ratios = [Fraction(n, m) for n, m in self.axes]
        text = [str(r) for r in ratios]
        return text[0] if len(set(ratios)) == 1 else "x".join(text)

    @property
    def stem(self) -> str:
        """File name stem, ``FINE-COARSE`` (letters and digits only, so it can never leave the store folder)."""
        return f"{self.fine}-{self.coarse}"

    def __str__(self) -> str:
        return f"{self.fine}>{self.coarse}"

    def __repr__(self) -> str:
        return f"GridOperatorSpec({str(self)!r})"


def parse_operator_spec(text: object) -> OperatorSpec | GridOperatorSpec:
    """A group operator ``G>H`` or a grid operator ``Z<N>...>Z<M>...`` (a spec starting with ``Z``).

    >>> parse_operator_spec("D12-D6"), parse_operator_spec("Z28>Z20")
    (OperatorSpec('D12>D6'), GridOperatorSpec('Z28>Z20'))
    """
    s = _need_str(text, "operator")
    if s[:1] in ("Z", "z"):
        return GridOperatorSpec.parse(s)
    return OperatorSpec.parse(s)
