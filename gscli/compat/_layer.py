"""The research code's layer: ``SubgroupDownsample`` and the translation of its arguments to a gscli operator."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gscli.errors import SubgroupError, shorten
from gscli.specs import MAX_GROUP_ORDER, GroupSpec, OperatorSpec, SubgroupSpec

__all__ = [
    "SubgroupDownsample",
    "operator_for",
    "Translation",
    "CompatWarning",
    "UnusedKeywordWarning",
    "GROUP_TYPES",
    "SUBGROUP_TYPES",
    "OPTIMISER_KEYWORDS",
]


class CompatWarning(UserWarning):
    """gscli.compat does what the request means mathematically, which differs from what the research code did."""


class UnusedKeywordWarning(CompatWarning):
    """A research-code keyword is accepted but has no effect in gscli (the reason is in the message)."""


#: The research code's group names and the gscli family they name (``order`` = N for C_N and D_N).
GROUP_TYPES = {
    "cycle": "C", "cyclic": "C", "dihedral": "D", "octahedral": "O", "full_octahedral": "Oh",
    "icosahedral": "I", "full_icosahedral": "Ih",
}
#: Subgroup names: the family of H. Inside O, O_h, I, I_h, "cycle" and "dihedral" are the rotation groups C_n, D_n.
SUBGROUP_TYPES = ("cycle", "cyclic", "dihedral", "octahedral", "full_octahedral", "icosahedral",
                  "full_icosahedral", "trivial")

#: Keywords of the research code's anti-aliasing optimiser (``anti_aliasing_kwargs`` / ``antialiasing_kwargs``).
OPTIMISER_KEYWORDS = ("smooth_operator", "smoothness_loss_weight", "iterations", "device", "dtype", "graph_shift",
                      "raynold_op", "equi_constraint", "equi_correction", "mode", "threshold")
_WHY_OPTIMISER = ("gscli solves the anti-aliasing projector exactly (spectral band solver, float64), "
                  "so there is nothing to optimise")

_FIXED_ORDERS = {"O": 24, "Oh": 48, "I": 60, "Ih": 120}


@dataclass(frozen=True)
class Translation:
    """What a research-code request means in gscli.

    ``operator`` is the gscli operator ``G>H``; ``generators`` the Cayley-graph generators passed to
    ``gscli build --generators`` (``None``: escnn's); ``notes`` the differences from the research
    code (each becomes one :class:`CompatWarning`).
    """

    operator: OperatorSpec
    generators: str | None
    notes: tuple[str, ...]

    @property
    def rate(self) -> int:
        return self.operator.rate


def _group(group_type: Any, order: Any) -> tuple[GroupSpec, list[str]]:
    notes: list[str] = []
    if not isinstance(group_type, str) or group_type not in GROUP_TYPES:
        raise SubgroupError(f"unknown group_type {shorten(group_type)}; allowed: {', '.join(map(repr, GROUP_TYPES))}")
    family = GROUP_TYPES[group_type]
    if family in ("C", "D"):
        if not isinstance(order, int) or isinstance(order, bool) or order < 1:
            raise SubgroupError(f"order {shorten(order)} for group_type {group_type!r} must be a positive integer "
                                f"(the number of rotations N of {family}_N)")
        largest = MAX_GROUP_ORDER if family == "C" else MAX_GROUP_ORDER // 2
        if order > largest:
            raise SubgroupError(f"order {order} for group_type {group_type!r} is too large: {family}_{order} has "
                                f"{order if family == 'C' else 2 * order} elements and gscli builds groups of at most "
                                f"{MAX_GROUP_ORDER}; allowed: order 1 to {largest} for {group_type!r}")
        return GroupSpec(family, order), notes
    if order is not None and order != _FIXED_ORDERS[family]:
        notes.append(f"order={order!r} is ignored for group_type {group_type!r} "
                     f"(|{family}| = {_FIXED_ORDERS[family]}), "
                     "as in the research code")
    return GroupSpec(family), notes


def _subgroup_name(group: GroupSpec, sub_type: str, m: int) -> str | None:
    """gscli's type name of a subgroup of order ``m`` and research-code family ``sub_type``, or None."""
    if sub_type in ("cycle", "cyclic"):
        return f"C{m}"
    if sub_type == "trivial":
        return "C1" if m == 1 else None
    if sub_type == "dihedral":
        return f"D{m // 2}" if m % 2 == 0 else None
    fixed = {"octahedral": "O", "full_octahedral": "Oh", "icosahedral": "I", "full_icosahedral": "Ih"}[sub_type]
    return fixed if _FIXED_ORDERS[fixed] == m else None


def _exists(group: GroupSpec, name: str) -> bool:
    """Whether G has a subgroup of gscli type ``name`` (planar: arithmetic; point groups: enumerated)."""
    sub = SubgroupSpec.parse(name)
    if group.order % sub.order:
        return False
    if group.planar:
        from gscli.models import subgroup_types

        return name in subgroup_types(group, group.order // sub.order)
    from gscli import _escnn

    return any(h.type == name for h in _escnn.subgroups(group, sub.order))


def _allowed(group: GroupSpec, sub_type: str) -> str:
    found = []
    for k in range(1, group.order + 1):
        if group.order % k:
            continue
        name = _subgroup_name(group, sub_type, group.order // k)
        if name is not None and _exists(group, name):
            found.append(f"{k} ({name})")
    return ", ".join(found) if found else "none"


def _reference_planar_nodes(group: GroupSpec, sub_type: str, k: int) -> list[int] | None:
    """The elements the research code samples for a planar request (its documented rules), or None.

    cycle -> cycle: every k-th element; dihedral -> dihedral: every k-th element of
    (rotations, reflections); dihedral -> cycle: every (k/2)-th rotation. A request its rule
    rejects (factor not dividing, odd factor for dihedral -> cycle) falls back to the first
    |G|/k elements (at least 6 for a cyclic target).
    """
    n = group.order
    cyclic = sub_type in ("cycle", "cyclic")
    if group.family == "C" and cyclic and n % k == 0:
        return list(range(0, n, k))
    if group.family == "D" and sub_type == "dihedral" and n % k == 0:
        return list(range(0, n, k))
    if group.family == "D" and cyclic and k % 2 == 0 and group.n % (k // 2) == 0:
        return list(range(0, group.n, k // 2))
    if sub_type in ("cycle", "cyclic", "dihedral"):
        size = n // k
        return list(range(max(6, size) if cyclic else size))
    return None


def _is_subgroup(group: GroupSpec, nodes: Sequence[int]) -> bool:
    from gscli.groups import closure, cyclic_table, dihedral_table

    table = cyclic_table(group.n) if group.family == "C" else dihedral_table(group.n)
    return len(nodes) > 0 and closure(table, nodes, 0) == frozenset(nodes)


def _names(group: GroupSpec, nodes: Sequence[int]) -> str:
    def one(i: int) -> str:
        k, flip = i % group.n, i // group.n
        rot = "e" if k == 0 else "r" if k == 1 else f"r^{k}"
        return rot if not flip else ("s" if k == 0 else f"{rot} s")

    if len(nodes) > 12:
        return f"all {len(nodes)} elements" if len(nodes) == group.order else f"{len(nodes)} elements"
    return "{" + ", ".join(one(i) for i in nodes) + "}"


def _generators(group: GroupSpec, generator: Any) -> str | None:
    if not isinstance(generator, str):
        raise SubgroupError(f"generator {generator!r} must be a string: 'r-s' (dihedral), 'r' (cyclic), or a "
                            "comma-separated list of element names/indices for gscli's --generators")
    if generator == "r-s" or (generator == "r" and group.family == "C"):
        return None  # escnn's generators: r (C_N), r and s (D_N), escnn's rotations (point groups)
    return generator


def operator_for(
    group_type: str, order: int | None = None, sub_group_type: str | None = None, subsampling_factor: int = 1,
    generator: str = "r-s",
) -> Translation:
    """The gscli operator for a research-code request, and how its meaning differs (pure, no building).

    ``subsampling_factor`` is read as the index |G|/|H|. Raises :class:`~gscli.errors.SubgroupError`
    for unknown names, orders or factors (naming the value and what is allowed) and for requests
    the research code would turn into a set that is not a subgroup.

    >>> operator_for("dihedral", 12, "dihedral", 2).operator
    OperatorSpec('D12>D6')
    >>> operator_for("dihedral", 12, "cycle", 4).operator
    OperatorSpec('D12>C6')
    >>> operator_for("cycle", 8, "cycle", 3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gscli.errors.SubgroupError: subsampling_factor 3 does not divide |C8| = 8 (group_type 'cycle', order 8); ...
    """
    group, notes = _group(group_type, order)
    sub_type = group_type if sub_group_type is None else sub_group_type
    if not isinstance(sub_type, str) or sub_type not in SUBGROUP_TYPES:
        raise SubgroupError(f"unknown sub_group_type {shorten(sub_type)}; "
                            f"allowed: {', '.join(map(repr, SUBGROUP_TYPES))}")
    k = subsampling_factor
    what = f"(group_type {group_type!r}, order {order!r})"
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise SubgroupError(f"subsampling_factor {shorten(k)} must be a positive integer, the index |G|/|H| {what}; "
                            f"allowed for sub_group_type {sub_type!r}: {_allowed(group, sub_type)}")
    if group.order % k:
        raise SubgroupError(f"subsampling_factor {k} does not divide |{group}| = {group.order} {what}; allowed "
                            f"factors for sub_group_type {sub_type!r}: {_allowed(group, sub_type)}")
    name = _subgroup_name(group, sub_type, group.order // k)
    if name is None or not _exists(group, name):
        reference = ""
        nodes = _reference_planar_nodes(group, sub_type, k) if group.planar else None
        if nodes is not None:
            what_it_is = "which is not a subgroup" if not _is_subgroup(group, nodes) else \
                f"a subgroup of order {len(nodes)}, not a {sub_type!r} subgroup of index {k}"
            reference = f"; the research code would sample {_names(group, nodes)}, {what_it_is}"
        target = name if name is not None else f"of order {group.order // k}"
        raise SubgroupError(
            f"subsampling_factor {k}: {group} has no {sub_type!r} subgroup of index {k} ({target}) {what}; "
            f"allowed factors for sub_group_type {sub_type!r}: {_allowed(group, sub_type)}{reference}"
        )
    operator = OperatorSpec(group, SubgroupSpec(name))
    generators = _generators(group, generator)
    if group.family in ("O", "Oh") and sub_type in ("cycle", "cyclic"):
        reported = max(6, 24 // k)
        notes.append(
            f"{group_type} -> {sub_type} with subsampling_factor {k}: the research code samples the 4-fold rotations "
            f"about z for every factor and reports the subgroup order as {reported}; gscli samples {name} "
            f"(index {k}, {operator.subgroup.order} elements), the copy with least aliasing"
        )
    elif group.family == "Oh" and sub_type == "octahedral":
        notes.append(f"{group_type} -> {sub_type} with subsampling_factor {k}: both sample the rotations, but the "
                     f"research code reports the subgroup order as {24 // k} (24 // factor); O has 24 elements")
    elif group.planar:
        from gscli.nn._source import escnn_available

        nodes = _reference_planar_nodes(group, sub_type, k)
        if generators is None and nodes is not None and k > 1 and escnn_available():
            from gscli.build import select_subgroup

            chosen, _ = select_subgroup(group, k, SubgroupSpec(name))
            if sorted(int(i) for i in chosen.subgroup.nodes) != sorted(nodes):
                notes.append(
                    f"{operator}: gscli samples {_names(group, chosen.subgroup.nodes)} (least aliasing, "
                    f"tr(PL) = {chosen.cost:.4g}); the research code samples {_names(group, nodes)}, another copy "
                    f"of {name}, so output channel i holds another element of G for some i "
                    "(the layer's subgroup_nodes say which)"
                )
    return Translation(operator, generators, tuple(notes))


def _unused_optimiser(kwargs: Any, where: str) -> list[str]:
    """Validate an ``anti_aliasing_kwargs`` mapping; return the keys that gscli ignores."""
    if kwargs is None:
        return []
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"{where} must be a dict of anti-aliasing optimiser settings, got {type(kwargs).__name__}")
    tolerated = (*OPTIMISER_KEYWORDS, "apply_antialiasing", "anti_aliasing_kwargs")  # the research code drops these
    unknown = [k for k in kwargs if k not in tolerated]
    if unknown:
        raise TypeError(f"{where} got an unexpected keyword argument {unknown[0]!r}; "
                        f"allowed: {', '.join(OPTIMISER_KEYWORDS)}")
    return [f"{where}[{k!r}]" for k in kwargs]


def _warn_unused(groups: list[tuple[list[str], str]], stacklevel: int = 3) -> None:
    """One warning listing every unused keyword, each group with its reason."""
    parts = [f"{', '.join(items)} ({reason})" for items, reason in groups if items]
    if parts:
        warnings.warn("unused: " + "; ".join(parts), UnusedKeywordWarning, stacklevel=stacklevel)


def _element_value(group: GroupSpec, index: int) -> Any:
    """An element index of G in the research code's format: r^k -> k (cyclic), r^k s^f -> (f, k) (dihedral)."""
    if group.family == "C":
        return int(index)
    if group.family == "D":
        return (int(index) // group.n, int(index) % group.n)
    return int(index)


def _device_of(module: nn.Module) -> torch.device:
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


class SubgroupDownsample(nn.Module):
    r"""The research code's ``SubgroupDownsample``, backed by a gscli operator file.

    Downsamples regular feature fields on G (``(batch, num_features*|G|, *spatial)``, group index
    fastest, 0 to 3 spatial dimensions; or one signal ``(|G|,)``) to the subgroup H of index
    ``subsampling_factor``: ``out = D x`` with gscli's exact operator :math:`D = S P`.

    Parameters
    ----------
    group_type : str
        ``'cycle'``/``'cyclic'`` (C_N), ``'dihedral'`` (D_N, 2N elements), ``'octahedral'`` (O, 24),
        ``'full_octahedral'`` (O_h, 48); gscli adds ``'icosahedral'`` (I) and ``'full_icosahedral'`` (I_h).
    order : int
        N, the number of rotations of C_N / D_N (ignored for the point groups).
    sub_group_type : str, optional
        The family of H (default: ``group_type``); also ``'trivial'``.
    subsampling_factor : int
        The index |G|/|H| (1: the identity operator).
    num_features : int
        Fields per input (checked against the input's channels).
    generator : str
        ``'r-s'`` (default) or ``'r'`` (cyclic): escnn's Cayley-graph generators. Any other string is
        a gscli generator list (``'r,r s'``), as ``gscli build --generators``.
    device, dtype :
        Where the layer lives; gscli applies the float64 operators in each input's dtype.
    sample_type : str
        ``'sample'`` only (the research code's ``'pool'`` max-pools the group axis, which is not a
        subgroup sampling).
    apply_antialiasing : bool
        ``False`` (the research code's default): plain subsampling ``S``; ``True``: ``D = S P``.
    anti_aliasing_kwargs : dict, optional
        The research code's optimiser settings: accepted, validated, reported unused.
    cannonicalize : bool
        Canonicalize (Xu et al. 2021) so that downsampling then upsampling is G-equivariant; the
        research code's spelling.
    store : path, optional
        gscli only: the operator store (default ``$GSCLI_STORE`` or ``operators/``).

    Notes
    -----
    ``forward(x)`` returns ``(out, canonicalization_element)``: ``[(-1, -1)]`` without
    canonicalization (as the research code), else one coset representative per sample in the
    research code's element format (``k`` for r^k in C_N, ``(f, k)`` for r^k s^f in D_N, an element
    index for point groups). ``upsample(y, canonicalization_element=None)`` applies the
    reconstruction ``U`` (exact for bandlimited signals; also with ``apply_antialiasing=False``,
    where the research code zero-fills); a canonicalizing layer shifts back by the element (default:
    those of the last ``forward``). The wrapped :class:`gscli.nn.GroupDownsample` is ``self.layer``.
    """

    def __init__(
        self,
        group_type: str,
        order: int | None = None,
        sub_group_type: str | None = None,
        subsampling_factor: int = 1,
        num_features: int = 1,
        generator: str = "r-s",
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        sample_type: str = "sample",
        apply_antialiasing: bool = False,
        anti_aliasing_kwargs: Mapping[str, Any] | None = None,
        cannonicalize: bool = False,
        *,
        store: str | Path | None = None,
        _report: bool = True,
    ) -> None:
        super().__init__()
        if sample_type != "sample":
            raise SubgroupError(f"sample_type {sample_type!r} is not supported; allowed: 'sample' ('pool' max-pools "
                                "the group axis, which is not sampling on a subgroup)")
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features < 1:
            raise SubgroupError(f"num_features {num_features!r} must be a positive integer")
        if dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise SubgroupError(f"dtype {dtype!r} is not supported; allowed: torch.float16, torch.bfloat16, "
                                "torch.float32, torch.float64")
        unused = _unused_optimiser(anti_aliasing_kwargs, "anti_aliasing_kwargs")
        translation = operator_for(group_type, order, sub_group_type, subsampling_factor, generator)
        if _report:
            for note in translation.notes:
                warnings.warn(note, CompatWarning, stacklevel=2)
            _warn_unused([(unused, _WHY_OPTIMISER)])
        self.translation = translation
        self.group_type, self.order = group_type, order
        self.sub_group_type = group_type if sub_group_type is None else sub_group_type
        self.subsampling_factor = subsampling_factor
        self.num_features = num_features
        self.generator = generator
        self.dtype = dtype
        self.apply_antialiasing = bool(apply_antialiasing)
        self.anti_aliasing_kwargs = dict(anti_aliasing_kwargs or {})
        self.layer = _layer_for(translation, store, antialias=self.apply_antialiasing, canonicalize=bool(cannonicalize),
                                fields=num_features).to(device)
        self.G_order = translation.operator.group.order
        sub = translation.operator.subgroup
        #: The research code's ``sub_order``: N of C_N / D_N (the next layer's ``order``), else |H|.
        self.sub_order = sub.order // 2 if sub.name.startswith("D") and sub.name[1:].isdigit() else sub.order
        self._last: Tensor | None = None

    @property
    def operator(self) -> OperatorSpec:
        """The gscli operator ``G>H`` this layer applies."""
        return self.translation.operator

    @property
    def device(self) -> torch.device:
        """Where the layer's operators live now (the research code's attribute; follows ``.to(...)``)."""
        return _device_of(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Any]:
        """``(out, canonicalization_element)``; ``out`` is ``(batch, num_features*|H|, *spatial)`` (or ``(|H|,)``)."""
        single = isinstance(x, Tensor) and x.dim() == 1
        if single:
            x = x.unsqueeze(0)
        result = self.layer(x)
        if self.layer.canonicalize:
            out, coset = result
            self._last = coset
            reps = self.layer.coset_representatives[coset].tolist()
            element = [_element_value(self.operator.group, g) for g in reps]
        else:
            out, element = result, [(-1, -1)]
        return (out[0] if single else out), element

    def upsample(self, x: Tensor, canonicalization_element: Any = None) -> Tensor:
        """Map ``(batch, num_features*|H|, *spatial)`` (or ``(|H|,)``) back to G with the reconstruction U."""
        single = isinstance(x, Tensor) and x.dim() == 1
        if single:
            x = x.unsqueeze(0)
        if not self.layer.canonicalize:
            out = self.layer.upsample(x)
        else:
            coset = self._coset_of(canonicalization_element, x.shape[0])
            out = self.layer.upsample(x, coset)
        return out[0] if single else out

    def _coset_of(self, element: Any, batch: int) -> Tensor:
        if element is None:
            if self._last is None or self._last.shape[0] != batch:
                raise SubgroupError("upsample of a canonicalizing layer needs the canonicalization_element that "
                                    f"forward returned for these {batch} samples")
            return self._last
        group = self.operator.group
        reps = [_element_value(group, int(g)) for g in self.layer.coset_representatives.tolist()]
        values = [tuple(v) if isinstance(v, (list, tuple)) else v for v in element]
        try:
            return torch.tensor([reps.index(v) for v in values], dtype=torch.int64,
                                device=self.layer.coset_representatives.device)
        except ValueError:
            raise SubgroupError(f"canonicalization_element {element!r} holds elements that are not this layer's "
                                f"coset representatives {reps}") from None

    def extra_repr(self) -> str:
        return (f"group_type={self.group_type!r}, order={self.order}, sub_group_type={self.sub_group_type!r}, "
                f"subsampling_factor={self.subsampling_factor}, operator={self.operator}")


def _layer_for(translation: Translation, store: str | Path | None, **options: Any) -> Any:
    """The gscli runtime layer for a translated request (from the store, built there on demand)."""
    from gscli.nn import GroupDownsample

    if translation.generators is None:
        return GroupDownsample.from_catalog(str(translation.operator), store=store, **options)
    from gscli.build import build
    from gscli.store import resolve_store

    op = translation.operator  # the store rule of every writer: only operators/ is created (docs/cli.md)
    result = build(op.group, None, op.subgroup, out=resolve_store(store), generators=translation.generators)
    return GroupDownsample.from_file(result.path, **options)
