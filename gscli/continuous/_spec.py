"""Continuous-group specs: band-limited fields of SO(2), O(2), SO(3), O(3) and their finite subgroups.

A band-limited field is written ``<family>_L<L>`` (degree at most L), an operator onto a finite
subgroup H adds ``>H``; the file-name form replaces ``>`` by ``-``::

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
from gscli.specs import SubgroupSpec

__all__ = [
    "CONTINUOUS_FAMILIES",
    "ContinuousGroupSpec",
    "ContinuousOperatorSpec",
    "MAX_CONTINUOUS_DIM",
    "band_dimension",
    "estimate_continuous_memory",
]

#: The continuous groups, their escnn names and the finite subgroups gscli samples them on.
CONTINUOUS_FAMILIES = {
    "SO2": ("SO(2)", "C<N>"),
    "O2": ("O(2)", "C<N>, D<N>"),
    "SO3": ("SO(3)", "C<N>, D<N> (N >= 2), O, I"),
    "O3": ("O(3)", "O, Oh, I, Ih"),
}

#: Largest number of Fourier coefficients: the dense dim x dim float64 operators stay at 128 MiB each.
MAX_CONTINUOUS_DIM = 4096

_ALLOWED = "SO2_L<L>, O2_L<L>, SO3_L<L> or O3_L<L> (L >= 0 an integer), e.g. 'SO3_L3'"
_GROUP_RE = re.compile(r"(?P<family>[A-Za-z0-9]+?)_L(?P<L>.*)")
_STEM_RE = re.compile(r"(?P<group>[A-Za-z0-9]+_L[0-9]+)-(?P<sub>[A-Za-z0-9]+)")


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


def _need_str(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise SpecError(f"{what} spec must be a string, got {type(text).__name__} {shorten(text)}")
    return text.strip()


@dataclass(frozen=True, order=True)
class ContinuousGroupSpec:
    """Band-limited fields of degree <= L on SO(2), O(2), SO(3) or O(3): ``SO3_L3``."""

    family: str
    L: int

    @classmethod
    def parse(cls, text: object) -> ContinuousGroupSpec:
        s = _need_str(text, "continuous group")
        m = _GROUP_RE.fullmatch(s)
        if m is None:
            raise SpecError(f"unknown continuous group {shorten(s)}; allowed: {_ALLOWED}")
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
            m = _STEM_RE.fullmatch(s)
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
    def stem(self) -> str:
        """File name stem ``G_L<L>-H`` (letters, digits and ``_-`` only)."""
        return f"{self.group}-{self.subgroup}"

    def __str__(self) -> str:
        return f"{self.group}>{self.subgroup}"

    def __repr__(self) -> str:
        return f"ContinuousOperatorSpec({str(self)!r})"
