"""Finite groups: choose the subgroup, solve for P, D and U, and check them (what ``gscli build`` writes).

Subgroup choice (documented rule): among the subgroups of G of index R (of the requested type, if
one is named), take the one with the least aliasing, i.e. the smallest tr(P L); ties (within 1e-9
relative) go first to a copy escnn can continue on (for point groups: a copy that is the fiber
group of one of escnn's 3-D gspaces, e.g. the C4 about the z axis, ``rot2dOnR3(4)``, inside O),
then to a copy escnn's group names by a subgroup id (``G.subgroup(id)``), then to the
alphabetically first type name, then to the lexicographically smallest sorted set of element
indices in G. Conjugate copies of a subgroup can differ in cost (the Cayley graph is built from
right multiplications), so every copy is a candidate.
"""

from __future__ import annotations

import json
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from gscli import __version__
from gscli._memory import available_memory
from gscli.checks import Check, check_operator, failed
from gscli.errors import FormatError, SizeError, SubgroupError
from gscli.fileformat import OperatorData, read_operator
from gscli.groups import FiniteGroup, Subgroup
from gscli.solver import BAND_TOL, RANK_TOL, Plan, Solution, assemble, laplacian_sparse, plan
from gscli.specs import MAX_GROUP_ORDER, GroupSpec, OperatorSpec, SubgroupSpec

__all__ = [
    "Candidate",
    "BuiltOperator",
    "BuildResult",
    "candidates",
    "tie_key",
    "select_subgroup",
    "validate_request",
    "choose",
    "build_operator",
    "is_up_to_date",
    "estimate_build_memory",
    "available_memory",
    "SOLVER",
    "BUILD_STEPS",
]

SOLVER = "spectral-bands/1"
_TIE = 1e-9


#: The steps of one build, in order, as ``progress`` reports them.
BUILD_STEPS = ("subgroup", "basis", "projector", "reconstruction", "checks", "writing")


def _check_size(spec: GroupSpec) -> None:
    if spec.order > MAX_GROUP_ORDER:
        raise SizeError(
            f"group {spec} has {spec.order} elements; gscli builds groups of at most {MAX_GROUP_ORDER} "
            f"elements (its dense {spec.order}x{spec.order} operators would need "
            f"{spec.order**2 * 8 * 6 / 2**30:.1f} GiB)"
        )


def estimate_build_memory(n: int, m: int) -> int:
    """Bytes a build of an n-element G onto an m-element H needs at its peak (an upper estimate).

    The peak is the write: the operator held in memory (P and G's int64 Cayley table, 16 n^2
    bytes; B, D and U, 24 n m) while the file written (12 n^2 + 24 n m: the table is stored as
    int32) is read back whole and parsed for verification (twice that), plus the interpreter and
    libraries (512 MiB). The solve and the checks need less (P, its products P P and B B^T, orbit
    labels). ``benchmarks/build.py`` prints the measured peak against this estimate.
    """
    square, rect = n * n, n * m
    return int(16 * square + 24 * rect + 2 * (12 * square + 24 * rect) + 8 * square + 512 * 2**20)


def _check_memory(group: GroupSpec, m: int) -> None:
    need = estimate_build_memory(group.order, m)
    free = available_memory()
    if free is not None and need > free:
        raise SizeError(
            f"building {group} onto a subgroup of order {m} needs about {need / 2**30:.1f} GiB of memory "
            f"(dense {group.order}x{group.order} float64 operators and their checks), and only "
            f"{free / 2**30:.1f} GiB is available; free memory or build a smaller group"
        )


@dataclass(frozen=True, eq=False)
class Candidate:
    """A subgroup of G with the solver's plan for it; the dense operators are formed on first use."""

    subgroup: Subgroup
    plan: Plan

    @property
    def cost(self) -> float:
        return self.plan.cost

    @cached_property
    def solution(self) -> Solution:
        return assemble(self.plan)


def _load(spec: GroupSpec, generators: Any = None) -> tuple[FiniteGroup, Any]:
    """G's tables from escnn; with ``generators`` (see :func:`gscli.cayley.resolve_generators`), G with that
    Cayley graph instead of escnn's."""
    _check_size(spec)
    from gscli import _escnn

    group = _escnn.load_group(spec)
    if generators is not None:
        from gscli.cayley import resolve_generators

        chosen = resolve_generators(group, generators)
        if chosen is not None:
            group = _with_generators(group, chosen)
    return group, _escnn


_CUSTOM_GROUPS: dict[tuple[int, tuple[int, ...]], FiniteGroup] = {}


def _with_generators(group: FiniteGroup, generators: tuple[int, ...]) -> FiniteGroup:
    """One FiniteGroup object per (group, generators), so the solver's band cache is reused."""
    from dataclasses import replace

    key = (id(group), generators)
    if key not in _CUSTOM_GROUPS:
        _CUSTOM_GROUPS[key] = replace(group, generators=generators)  # not planar: its bands come from eigh
    return _CUSTOM_GROUPS[key]


def candidates(group: GroupSpec, order: int | None = None, generators: Any = None) -> list[Candidate]:
    """Every subgroup of ``group`` (of ``order`` elements, if given), solved, sorted by the selection rule.

    ``generators`` chooses the Cayley graph (default: escnn's; see :mod:`gscli.cayley`).
    """
    G, escnn_side = _load(group, generators)
    found = [Candidate(h, plan(G, h.nodes)) for h in escnn_side.subgroups(group, order)]
    return sorted(found, key=lambda c: (c.subgroup.order, round(c.cost, 6)) + tie_key(c.subgroup))


def tie_key(subgroup: Subgroup) -> tuple[Any, ...]:
    """How copies tied on aliasing cost are ordered: escnn gspace first, escnn id next, type, indices."""
    return (subgroup.escnn_gspace is None, subgroup.escnn_id is None, subgroup.type, subgroup.key)


def _rates_available(group: GroupSpec) -> dict[int, list[str]]:
    from gscli import _escnn

    table: dict[int, list[str]] = {}
    for h in _escnn.subgroups(group):
        types = table.setdefault(group.order // h.order, [])
        if h.type not in types:
            types.append(h.type)
    return dict(sorted(table.items()))


def _describe_available(group: GroupSpec) -> str:
    return "; ".join(f"R={r}: {', '.join(sorted(types))}" for r, types in _rates_available(group).items())


def choose(pool: list[Candidate]) -> tuple[Candidate, list[Candidate]]:
    """The selection rule: least tr(P L); ties by :func:`tie_key` (escnn gspace, escnn id, type, indices).

    Returns the chosen candidate and every candidate tied with it on cost.
    """
    best = min(c.cost for c in pool)
    tied = [c for c in pool if c.cost <= best + _TIE * max(1.0, abs(best))]
    return min(tied, key=lambda c: tie_key(c.subgroup)), tied


def _allowed_rates(group: GroupSpec) -> list[int]:
    """The rates G has a subgroup for: every divisor of |G| for C_N and D_N, fewer for point groups."""
    if group.planar:  # C_N has C_d for every d | N; D_N has C_d (d | N) and D_k (2k, k | N): every divisor
        return [r for r in range(1, group.order + 1) if group.order % r == 0]
    return list(_rates_available(group))


def _check_numbers(group: GroupSpec, rate: int | None, subgroup: SubgroupSpec | None) -> None:
    """The checks of :func:`validate_request` that need no subgroup enumeration: size, rate, orders."""
    _check_size(group)
    if rate is None and subgroup is None:
        raise SubgroupError(f"give a rate (--rate R) or a subgroup type (--subgroup TYPE) for {group}")
    if rate is not None and (not isinstance(rate, numbers.Integral) or isinstance(rate, bool) or rate < 1):
        raise SubgroupError(f"rate {rate!r} must be a positive integer dividing |{group}| = {group.order}; "
                            f"allowed rates: {', '.join(map(str, _allowed_rates(group)))}")
    if rate is not None and group.order % rate:
        raise SubgroupError(
            f"rate {rate} does not divide |{group}| = {group.order}; "
            f"allowed rates: {', '.join(map(str, _allowed_rates(group)))}"
        )
    if subgroup is not None:
        if group.order % subgroup.order:
            raise SubgroupError(
                f"no subgroup of type {subgroup} in {group}: |{subgroup}| = {subgroup.order} does not divide "
                f"|{group}| = {group.order}; available: {_describe_available(group)}"
            )
        if rate is not None and rate * subgroup.order != group.order:
            raise SubgroupError(
                f"subgroup {subgroup} has index {group.order // subgroup.order} in {group}, not rate {rate}; "
                f"available: {_describe_available(group)}"
            )


def validate_request(group: GroupSpec, rate: int | None = None, subgroup: SubgroupSpec | None = None) -> int:
    """Check a (rate, subgroup type) request against G without solving anything; return |H|.

    Raises :class:`SizeError` for a group too large to build, :class:`SubgroupError` (listing what
    exists) for a rate or type G does not have.
    """
    _check_numbers(group, rate, subgroup)
    order = group.order // int(rate) if rate is not None else subgroup.order  # type: ignore[union-attr]
    _check_memory(group, order)
    from gscli import _escnn

    types = {h.type for h in _escnn.subgroups(group, order)}
    if not types or (subgroup is not None and str(subgroup) not in types):
        what = f"of type {subgroup}" if subgroup is not None else f"of index {rate}"
        raise SubgroupError(f"{group} has no subgroup {what}; available: {_describe_available(group)}")
    return order


def select_subgroup(
    group: GroupSpec, rate: int | None = None, subgroup: SubgroupSpec | None = None, generators: Any = None
) -> tuple[Candidate, str]:
    """Choose H for a rate and/or a subgroup type; return it with a sentence saying why.

    ``generators``: the Cayley graph whose Laplacian measures aliasing (default: escnn's).
    Raises :class:`SubgroupError` (listing what exists) when nothing matches.
    """
    order = validate_request(group, rate, subgroup)
    pool = candidates(group, order, generators)
    if subgroup is not None:
        pool = [c for c in pool if c.subgroup.type == str(subgroup)]
    chosen, tied = choose(pool)
    types = sorted({c.subgroup.type for c in pool})
    reason = (
        f"least aliasing: tr(PL) = {abs(chosen.cost):.6g}, the smallest among {len(pool)} "
        f"subgroup{'s' if len(pool) != 1 else ''} of index {group.order // order} "
        f"({'type' if len(types) == 1 else 'types'} {', '.join(types)})"
    )
    if len(tied) > 1:
        reason += (f"; {len(tied)} tie, the first by (escnn gspace, escnn subgroup id, type name, sorted element "
                   "indices) is taken")
    if chosen.subgroup.escnn_gspace is not None:
        reason += f"; escnn gspace of H: {chosen.subgroup.escnn_gspace}"
    if generators is not None:
        G, _ = _load(group, generators)
        default, _ = _load(group)
        if G is not default:
            from gscli.cayley import describe_generators

            reason += f"; Cayley-graph generators {describe_generators(G, G.generators)} (escnn's: " \
                      f"{describe_generators(default, default.generators)})"
    return chosen, reason


@dataclass(frozen=True, eq=False)
class BuiltOperator:
    """A computed, checked operator, ready to be written."""

    spec: OperatorSpec
    group: FiniteGroup
    subgroup: Subgroup
    solution: Solution
    checks: tuple[Check, ...]
    selection: str

    @property
    def ok(self) -> bool:
        return not failed(list(self.checks))

    def arrays(self) -> dict[str, np.ndarray]:
        s = self.solution
        arrays = {
            "downsample": s.downsample,
            "upsample": s.upsample,
            "antialias": s.antialias,
            "basis": s.basis,
            "subgroup_nodes": self.subgroup.nodes,
            "bands": np.array([(b.eigenvalue, b.dimension, b.kept) for b in s.bands],
                              dtype=[("eigenvalue", "<f8"), ("dimension", "<i8"), ("kept", "<i8")]),
            "group_cayley": self.group.cayley,
            "subgroup_cayley": self.subgroup.cayley,
            "group_generators": np.asarray(self.group.generators, dtype=np.int64),
            "group_element_names": np.asarray(self.group.element_names, dtype=object),
        }
        if self.group.matrices is not None:
            arrays["group_matrices"] = self.group.matrices
        return arrays

    @property
    def custom_generators(self) -> tuple[int, ...] | None:
        """The Cayley-graph generators if they are not escnn's, else ``None``."""
        from gscli._escnn import load_group

        default = load_group(self.spec.group).generators
        mine = tuple(sorted(set(self.group.generators)))
        return None if mine == tuple(sorted(set(default))) else mine

    @property
    def file_suffix(self) -> str:
        from gscli.cayley import generator_suffix

        return generator_suffix(self.custom_generators)

    # What the build pipeline asks of every family's built operator (gscli.families.Built).
    def datasets(self) -> dict[str, np.ndarray]:
        return self.arrays()

    def attributes(self) -> dict[str, Any]:
        return self.attrs()

    @property
    def suffix(self) -> str:
        return self.file_suffix

    @property
    def status_key(self) -> tuple[int, ...] | None:
        return self.custom_generators

    def attrs(self) -> dict[str, Any]:
        from gscli._escnn import escnn_version
        from gscli.cayley import DEFAULT, describe_generators

        custom = self.custom_generators
        attrs: dict[str, Any] = {
            "cayley_generators": DEFAULT if custom is None else describe_generators(self.group, custom),
            "group": str(self.spec.group),
            "subgroup": str(self.spec.subgroup),
            "rate": self.spec.rate,
            "group_order": self.group.order,
            "subgroup_order": self.subgroup.order,
            "group_identity": int(self.group.identity),
            "subgroup_identity": int(self.subgroup.identity),
            "subgroup_source": self.subgroup.source,
            "escnn_subgroup_id": json.dumps(self.subgroup.escnn_id),
            "selection": self.selection,
            "solver": SOLVER,
            "solver_band_tol": BAND_TOL,
            "solver_rank_tol": RANK_TOL,
            "aliasing_cost": abs(self.solution.cost) if abs(self.solution.cost) < 1e-12 else self.solution.cost,
            "checks": json.dumps([c.as_dict() for c in self.checks]),
            "gscli_version": __version__,
            "escnn_version": escnn_version(),
        }
        if not self.spec.group.planar:  # "" = escnn has no 3-D gspace for this copy of H
            attrs["escnn_gspace"] = self.subgroup.escnn_gspace or ""
        return attrs


def build_operator(
    group: GroupSpec | str,
    rate: int | None = None,
    subgroup: SubgroupSpec | str | None = None,
    progress: Callable[[str], None] | None = None,
    generators: Any = None,
) -> BuiltOperator:
    """Choose the subgroup, solve for P, D and U in float64, and measure every check.

    ``progress``, if given, is called with each step of :data:`BUILD_STEPS` as it starts.
    ``generators`` (names or indices of elements of G, e.g. ``"r, r s"``) choose the Cayley graph
    whose Laplacian defines the bands; default escnn's ``G.generators``. A set that does not
    generate G raises :class:`SubgroupError` naming what it generates.

    >>> op = build_operator("D12", subgroup="D6")
    >>> op.spec, op.ok, op.solution.downsample.shape
    (OperatorSpec('D12>D6'), True, (12, 24))
    """
    say = progress or (lambda _: None)
    group = GroupSpec.parse(group) if isinstance(group, str) else group
    subgroup = SubgroupSpec.parse(subgroup) if isinstance(subgroup, str) else subgroup
    say("subgroup")
    chosen, reason = select_subgroup(group, rate, subgroup, generators)
    G, _ = _load(group, generators)
    sol = assemble(chosen.plan, say)
    say("checks")
    checks = check_operator(
        sol.antialias, sol.downsample, sol.upsample, chosen.subgroup.nodes, G.cayley, chosen.subgroup.cayley,
        laplacian=laplacian_sparse(G),
        cyclic=group.family == "C" and G is _load(group)[0],  # the FFT low-pass is that of generator r
    )
    spec = OperatorSpec(group, SubgroupSpec(chosen.subgroup.type))
    return BuiltOperator(spec, G, chosen.subgroup, sol, tuple(checks), reason)


@dataclass
class BuildResult:
    """What happened to one operator: ``status`` is ``built``, ``rebuilt`` or ``up-to-date``."""

    spec: OperatorSpec
    path: Path
    status: str
    seconds: float
    selection: str = ""
    checks: list[dict] = field(default_factory=list)
    checksum: str = ""
    bands: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operator": str(self.spec),
            "file": str(self.path),
            "status": self.status,
            "rate": self.spec.rate,
            "seconds": round(self.seconds, 4),
            "selection": self.selection,
            "checksum": self.checksum,
            "bands": self.bands,
            "checks": self.checks,
        }


def _bands_of(bands: np.ndarray) -> list[dict]:
    return [{"eigenvalue": float(b["eigenvalue"]), "dimension": int(b["dimension"]), "kept": int(b["kept"])} for b in bands]


def _result_from_file(spec: OperatorSpec, path: Path, data: OperatorData, start: float,
                      selection: str | None = None) -> BuildResult:
    """An ``up-to-date`` result; ``selection`` is this request's reason when it was computed, else the file's."""
    if selection is None:
        selection = f"up to date, kept as built: {data.attrs.get('selection', '')}"
    return BuildResult(spec, path, "up-to-date", time.perf_counter() - start, selection,
                       data.checks, data.attrs["checksum"], _bands_of(data["bands"]))


def _file_status(
    path: Path, spec: OperatorSpec, generators: tuple[int, ...] | None = None
) -> tuple[OperatorData | None, str]:
    """``(data, "")`` when ``path`` is a valid, current file for ``spec``; else ``(None, why not)``.

    ``generators``: the custom Cayley-graph generators the file must have been built with (``None``:
    escnn's, recorded as ``cayley_generators = "escnn"`` or, in older files, not recorded).
    """
    from gscli.cayley import DEFAULT

    try:
        data = read_operator(path, expect=spec)
    except FormatError as exc:
        return None, str(exc)
    a = data.attrs
    recorded = a.get("cayley_generators", DEFAULT)
    stored = tuple(sorted(int(g) for g in data["group_generators"]))
    if generators is None and recorded != DEFAULT:
        return None, f"{path} was built with Cayley-graph generators {recorded}, not escnn's"
    if generators is not None and (recorded == DEFAULT or stored != tuple(sorted(generators))):
        return None, f"{path} was built with Cayley-graph generators {recorded}, not the requested ones"
    if a.get("solver") != SOLVER:
        return None, f"{path} was made by solver {a.get('solver')!r}, not {SOLVER!r}"
    return data, ""


def is_up_to_date(path: Path, spec: OperatorSpec, generators: tuple[int, ...] | None = None) -> bool:
    """True when ``path`` is a valid file (checksum verified) for ``spec`` from this solver and format
    (and, with ``generators``, built with those Cayley-graph generators)."""
    return _file_status(path, spec, generators)[0] is not None
