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

Continuous groups (docs/continuous.md) are written ``<family>_L<L>`` for the band-limited fields of
degree <= L, the finite subgroup after ``>``::

    >>> ContinuousOperatorSpec.parse("SO3_L3>O")
    ContinuousOperatorSpec('SO3_L3>O')
    >>> ContinuousOperatorSpec.parse("SO3_L3-O").stem
    'SO3_L3-O'
    >>> ContinuousGroupSpec.parse("SO3_L2").dimension
    35
    >>> ContinuousOperatorSpec.parse("O2_L4>D6").subgroup_order
    12
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gscli.errors import SizeError, SpecError, shorten

__all__ = [
    "GroupSpec",
    "SubgroupSpec",
    "OperatorSpec",
    "GridSpec",
    "GridOperatorSpec",
    "ContinuousGroupSpec",
    "ContinuousOperatorSpec",
    "CONTINUOUS_FAMILIES",
    "MAX_CONTINUOUS_DIM",
    "band_dimension",
    "estimate_continuous_memory",
    "is_continuous_text",
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

# --------------------------------------------------------------------------------------------------
# Continuous groups (docs/continuous.md): band-limited fields of SO(2), O(2), SO(3), O(3), ``SO3_L3``,
# sampled on a finite subgroup, ``SO3_L3>O`` (file-name form ``SO3_L3-O``).

#: The continuous groups, their escnn names and the finite subgroups gscli samples them on.
CONTINUOUS_FAMILIES = {
    "SO2": ("SO(2)", "C<N>"),
    "O2": ("O(2)", "C<N>, D<N>"),
    "SO3": ("SO(3)", "C<N>, D<N> (N >= 2), O, I"),
    "O3": ("O(3)", "O, Oh, I, Ih"),
}

#: Largest number of Fourier coefficients: the dense dim x dim float64 operators stay at 128 MiB each.
MAX_CONTINUOUS_DIM = 4096

_ALLOWED_CONTINUOUS = "SO2_L<L>, O2_L<L>, SO3_L<L> or O3_L<L> (L >= 0 an integer), e.g. 'SO3_L3'"
_CONTINUOUS_RE = re.compile(r"(?P<family>[A-Za-z0-9]+?)_L(?P<L>.*)")
_CONTINUOUS_STEM_RE = re.compile(r"(?P<group>[A-Za-z0-9]+_L[0-9]+)-(?P<sub>[A-Za-z0-9]+)")


def band_dimension(family: str, L: int) -> int:
    """Dimension of escnn's ``bl_regular_representation(L)``: sum of d_psi^2 / (copies per complex type).

    >>> [band_dimension(f, 2) for f in ("SO2", "O2", "SO3", "O3")]
    [5, 10, 35, 70]
    """
    if family == "SO2":
        return 2 * L + 1
    if family == "O2":
        return 4 * L + 2
    so3 = (L + 1) * (2 * L + 1) * (2 * L + 3) // 3
    return so3 if family == "SO3" else 2 * so3


def estimate_continuous_memory(dim: int, m: int) -> int:
    """Bytes a build needs at its peak (an upper estimate): P, its square and B B^T (dim^2 each), the
    sampling, D, U and B (dim m each), the same again for the file read back, plus 512 MiB for the
    interpreter and libraries (escnn, torch)."""
    return int(8 * (2 * (3 * dim * dim + 5 * dim * m)) + 512 * 2**20)


def _largest_L(family: str) -> int:
    L = 0
    while band_dimension(family, L + 1) <= MAX_CONTINUOUS_DIM:
        L += 1
    return L


@dataclass(frozen=True, order=True)
class ContinuousGroupSpec:
    """Band-limited fields of degree <= L on SO(2), O(2), SO(3) or O(3): ``SO3_L3``."""

    family: str
    L: int

    @classmethod
    def parse(cls, text: object) -> ContinuousGroupSpec:
        s = _need_str(text, "continuous group")
        m = _CONTINUOUS_RE.fullmatch(s)
        if m is None:
            raise SpecError(f"unknown continuous group {shorten(s)}; allowed: {_ALLOWED_CONTINUOUS}")
        family, degree = m.group("family"), m.group("L")
        if family not in CONTINUOUS_FAMILIES:
            hint = f" (did you mean {family.upper()!r}?)" if family.upper() in CONTINUOUS_FAMILIES else ""
            raise SpecError(f"unknown continuous group family {shorten(family)} in {shorten(s)}{hint}; "
                            f"allowed: {', '.join(CONTINUOUS_FAMILIES)}")
        if re.fullmatch(r"-[0-9]+", degree):
            raise SpecError(f"continuous group {shorten(s)}: the band limit L = {degree} is negative; "
                            f"L must be an integer >= 0, e.g. '{family}_L3'")
        if not re.fullmatch(r"[0-9]{1,60}", degree):
            raise SpecError(f"continuous group {shorten(s)}: the band limit L = {shorten(degree)} is not an integer; "
                            f"L must be an integer >= 0, e.g. '{family}_L3'")
        return cls(family, int(degree))

    def __post_init__(self) -> None:
        if self.family not in CONTINUOUS_FAMILIES:
            raise SpecError(f"unknown continuous group family {shorten(self.family)}; "
                            f"allowed: {', '.join(CONTINUOUS_FAMILIES)}")
        if isinstance(self.L, bool) or not isinstance(self.L, int) or self.L < 0:
            raise SpecError(f"continuous group {self.family}: the band limit L = {shorten(self.L)} must be an integer >= 0")
        dim = band_dimension(self.family, self.L)
        if dim > MAX_CONTINUOUS_DIM:
            need = estimate_continuous_memory(dim, dim)
            raise SizeError(
                f"continuous group {self}: band limit L = {self.L} gives {dim} Fourier coefficients; its dense "
                f"{dim}x{dim} float64 operators and their checks would need about {need / 2**30:,.3g} GiB; gscli builds "
                f"at most {MAX_CONTINUOUS_DIM} coefficients ({self.family}: L <= {_largest_L(self.family)})"
            )

    @property
    def name(self) -> str:
        """The group's usual name: ``SO(3)``."""
        return CONTINUOUS_FAMILIES[self.family][0]

    @property
    def dimension(self) -> int:
        """Number of Fourier coefficients of one band-limited field (escnn's ``bl_regular_representation(L).size``)."""
        return band_dimension(self.family, self.L)

    def __str__(self) -> str:
        return f"{self.family}_L{self.L}"

    def __repr__(self) -> str:
        return f"ContinuousGroupSpec({str(self)!r})"


def _subgroup_problem(family: str, sub: SubgroupSpec) -> str | None:
    """Why ``sub`` is no finite subgroup gscli can sample ``family`` on (None if it is one)."""
    name = sub.name
    planar = re.fullmatch(r"(?P<cd>[CD])(?P<n>[0-9]+)", name)
    allowed = CONTINUOUS_FAMILIES[family][1]
    group = CONTINUOUS_FAMILIES[family][0]
    if family == "SO2":
        ok = planar is not None and planar.group("cd") == "C"
        if not ok and planar is not None:
            return f"{name} is not a subgroup of {group} (its reflections are not rotations); {group} has {allowed}"
    elif family == "O2":
        ok = planar is not None
    elif family == "SO3":
        if name == "T":
            return ("T is a subgroup of SO(3), but escnn 1.0.11 does not implement it "
                    f"(so3_group().subgroup(('tetra',)) raises NotImplementedError); {group} has {allowed}")
        ok = name in ("O", "I") or (planar is not None and (planar.group("cd") == "C" or int(planar.group("n")) >= 2))
        if name in ("Oh", "Ih"):
            return f"{name} is not a subgroup of {group} (it holds the inversion); {group} has {allowed}; {name} is in O3"
    else:
        ok = name in ("O", "Oh", "I", "Ih")
    if not ok:
        return f"{name} is not a finite subgroup of {group} that gscli samples on; {group} has {allowed}"
    return None


@dataclass(frozen=True, order=True)
class ContinuousOperatorSpec:
    """Sampling band-limited fields of a continuous group on a finite subgroup: ``SO3_L3>O``, ``SO2_L5>C8``.

    ``G_L<L>-H`` is the file-name form (:attr:`stem`).
    """

    group: ContinuousGroupSpec
    subgroup: SubgroupSpec

    @classmethod
    def parse(cls, text: object) -> ContinuousOperatorSpec:
        s = _need_str(text, "continuous operator")
        if ">" in s:
            parts = [p.strip() for p in s.split(">")]
        else:
            m = _CONTINUOUS_STEM_RE.fullmatch(s)
            parts = [m.group("group"), m.group("sub")] if m else [s]
        if len(parts) != 2 or not all(parts):
            if len(parts) == 1:
                ContinuousGroupSpec.parse(parts[0])  # a bad group part is the better message
            raise SpecError(f"continuous operator spec {shorten(s)} must be GROUP>SUBGROUP, e.g. 'SO3_L3>O' or "
                            f"'SO2_L5>C8' (file-name form 'SO3_L3-O')")
        return cls(ContinuousGroupSpec.parse(parts[0]), SubgroupSpec.parse(parts[1]))

    def __post_init__(self) -> None:
        problem = _subgroup_problem(self.group.family, self.subgroup)
        if problem is not None:
            raise SpecError(f"continuous operator {self.group}>{self.subgroup}: {problem}")

    @property
    def subgroup_order(self) -> int:
        """|H|."""
        return self.subgroup.order

    @property
    def escnn_subgroup_id(self) -> int | tuple:
        """escnn's id of H in G (``G.subgroup(id)``), DESIGN §9: e.g. 8, (0., 6), ('octa',), (True, 'ico').

        >>> ContinuousOperatorSpec.parse("O2_L4>D6").escnn_subgroup_id, ContinuousOperatorSpec.parse("O3_L2>Ih").escnn_subgroup_id
        ((0.0, 6), (True, 'ico'))
        """
        family, name = self.group.family, self.subgroup.name
        kind, n = name[0], int(name[1:]) if name[1:].isdigit() else 0
        if family == "SO2":
            return n
        if family == "O2":
            return (0.0, n) if kind == "D" else (None, n)
        if family == "SO3":
            if name in ("O", "I"):
                return ({"O": "octa", "I": "ico"}[name],)
            return (kind == "D", n)
        return {"O": (False, "octa"), "I": (False, "ico"), "Oh": (True, "octa"), "Ih": (True, "ico")}[name]

    @property
    def rate(self) -> str:
        """Coefficients per sample, ``dim/|H|`` unreduced (``'35/24'``): what one sample on H stands for."""
        return f"{self.group.dimension}/{self.subgroup_order}"

    @property
    def stem(self) -> str:
        """File name stem ``G_L<L>-H`` (letters, digits and ``_-`` only)."""
        return f"{self.group}-{self.subgroup}"

    def __str__(self) -> str:
        return f"{self.group}>{self.subgroup}"

    def __repr__(self) -> str:
        return f"ContinuousOperatorSpec({str(self)!r})"


def is_continuous_text(text: str) -> bool:
    """Whether ``text`` is written in the continuous-group grammar (``<family>_L...``), valid or not."""
    return re.match(r"\s*[A-Za-z0-9]+_[Ll]", text) is not None


def parse_operator_spec(text: object) -> OperatorSpec | GridOperatorSpec | ContinuousOperatorSpec:
    """A group operator ``G>H``, a grid operator ``Z<N>...>Z<M>...`` (a spec starting with ``Z``) or a
    continuous-group operator ``SO3_L3>O`` (a group written ``<family>_L<L>``).

    >>> parse_operator_spec("D12-D6"), parse_operator_spec("Z28>Z20"), parse_operator_spec("SO3_L3-O")
    (OperatorSpec('D12>D6'), GridOperatorSpec('Z28>Z20'), ContinuousOperatorSpec('SO3_L3>O'))
    """
    s = _need_str(text, "operator")
    if s[:1] in ("Z", "z"):
        return GridOperatorSpec.parse(s)
    if is_continuous_text(s):
        return ContinuousOperatorSpec.parse(s)
    return OperatorSpec.parse(s)
