"""The Cayley graph's generators: which elements define "frequency" (pure numpy, no escnn).

The Laplacian whose eigenspaces are the bands (DESIGN §3) is that of the Cayley graph with edges
x ~ x s^{+-1} for every generator s. escnn's ``G.generators`` are the default (C_N: r; D_N: r, s;
the point groups: escnn's rotations). Another generating set gives another graph, other bands, and
possibly another least-aliasing subgroup; :func:`resolve_generators` parses and validates such a
choice, and :func:`generator_suffix` names its operator files so that two choices never share a file.

>>> from gscli.groups import FiniteGroup, dihedral_table
>>> names = ("e", "r", "r^2", "r^3", "s", "r s", "r^2 s", "r^3 s")
>>> D4 = FiniteGroup("D4", dihedral_table(4), 0, (1, 4), names)
>>> resolve_generators(D4, "r, r s")
(1, 5)
>>> resolve_generators(D4, "s,r") is None      # escnn's own set: the default
True
>>> generator_suffix((1, 5))
'g1_5'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gscli.errors import SubgroupError
from gscli.groups import FiniteGroup, closure

__all__ = ["resolve_generators", "parse_generator_list", "generator_suffix", "describe_generators", "DEFAULT"]

#: Value of the ``cayley_generators`` file attribute for escnn's generators.
DEFAULT = "escnn"


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses (point-group names such as ``90° about (0,0,1)`` hold commas)."""
    items, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [" ".join(item.split()) for item in items]


def _normal(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip()).replace("°", "").replace(" ", "").lower()


def parse_generator_list(group: FiniteGroup, spec: str | Sequence[int | str]) -> tuple[int, ...]:
    """Element indices named by ``spec``: a comma-separated string or a sequence of names/indices.

    An item is an element name as ``gscli inspect`` shows it (``r``, ``r^2 s``, ``90° about (0,0,1)``;
    spaces and the degree sign are optional) or an index into G's element order.

    Raises
    ------
    SubgroupError
        An item names no element of G (the message lists G's element names).
    """
    items = _split(spec) if isinstance(spec, str) else list(spec)
    by_name = {_normal(n): i for i, n in enumerate(group.element_names)}
    found: list[int] = []
    for item in items:
        if isinstance(item, (int,)) and not isinstance(item, bool):
            index = int(item)
        elif isinstance(item, str) and item.strip().isdigit():
            index = int(item.strip())
        elif isinstance(item, str) and _normal(item) in by_name:
            index = by_name[_normal(item)]
        else:
            shown = ", ".join(group.element_names[: min(group.order, 16)])
            more = f", ... ({group.order} in all)" if group.order > 16 else ""
            raise SubgroupError(
                f"generator {item!r} is not an element of {group.name}; give element names or indices "
                f"0..{group.order - 1}, e.g. {shown}{more}"
            )
        if not 0 <= index < group.order:
            raise SubgroupError(f"generator index {index} is not an element of {group.name} "
                                f"(indices 0..{group.order - 1})")
        found.append(index)
    if not found or (len(found) == 1 and isinstance(spec, str) and not spec.strip()):
        raise SubgroupError(f"--generators needs at least one element of {group.name}, e.g. "
                            f"{', '.join(group.element_names[i] for i in group.generators)}")
    return tuple(sorted(set(found)))


def describe_generators(group: FiniteGroup, generators: Sequence[int]) -> str:
    """Readable list of generator names, e.g. ``r, r s``."""
    return ", ".join(group.element_names[int(g)] for g in generators)


def _generated_type(group: FiniteGroup, elements: frozenset[int]) -> str:
    """Type of the generated subgroup where gscli can name it (escnn's subgroups, point-group classes)."""
    if group.matrices is not None and group.matrices.shape[1] == 3:
        from gscli.groups import classify_point_group

        return classify_point_group(group, elements)
    name = group.name
    if name.startswith(("C", "D")) and name[1:].isdigit():  # planar: a cyclic group, or a dihedral one
        if any(group.element_order(g) == len(elements) for g in elements):
            return f"C{len(elements)}"
        return f"D{len(elements) // 2}"
    return f"a subgroup of order {len(elements)}"


def resolve_generators(group: FiniteGroup, spec: str | Sequence[int | str] | None) -> tuple[int, ...] | None:
    """Validated generator indices (sorted, distinct), or ``None`` for escnn's default set.

    A set equal to escnn's (in any order) is the default and returns ``None``, so it builds and
    names files exactly like no choice at all.

    Raises
    ------
    SubgroupError
        An item is not an element, or the elements do not generate G (the message names the subgroup
        they generate and suggests an element to add).
    """
    if spec is None:
        return None
    gens = parse_generator_list(group, spec)
    reached = closure(group.cayley, gens, group.identity)
    if len(reached) != group.order:
        outside = next(i for i in range(group.order) if i not in reached)
        raise SubgroupError(
            f"generators {describe_generators(group, gens)} generate {_generated_type(group, reached)} "
            f"({len(reached)} of the {group.order} elements of {group.name}), not {group.name}; "
            f"add an element outside it, e.g. {group.element_names[outside]!r}"
        )
    if tuple(sorted(set(group.generators))) == gens:
        return None
    return gens


#: Longest generator suffix written out in full; a longer list is named by a digest (file names are
#: limited to 255 bytes, and a list of 120 generators of D100 would need 418).
SUFFIX_LIMIT = 100


def generator_suffix(generators: Sequence[int] | None) -> str:
    """File-name suffix of a generator choice: ``""`` for the default, else ``g<i>_<j>...`` (element
    indices), or, when that would be longer than :data:`SUFFIX_LIMIT` characters, ``gh`` and the first
    16 hex digits of the sha256 of the comma-separated sorted indices (the file records the generators
    themselves, and the up-to-date check compares them, so a shared digest cannot pass a wrong file).

    >>> generator_suffix(range(1, 121))
    'gh1c4732eaf0b754ef'
    """
    if generators is None:
        return ""
    indices = [int(g) for g in sorted(set(int(g) for g in generators))]
    full = "g" + "_".join(map(str, indices))
    if len(full) <= SUFFIX_LIMIT:
        return full
    import hashlib

    return "gh" + hashlib.sha256(",".join(map(str, indices)).encode("ascii")).hexdigest()[:16]
