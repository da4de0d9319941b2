"""escnn's 3-D gspaces as short, safe expressions (pure Python; never imports escnn).

An operator file of a point group names the escnn gspace its H-fields live on, e.g.
``"rot2dOnR3(4)"``: the C4 copy of O about the z axis, in escnn's element order for C4. Only the
factories below, with at most one integer argument, are understood; nothing is evaluated.

Why an expression and not an id for ``gspace.restrict``: escnn 1.0.11's ``GSpace3D.restrict``
raises for every id on ``octaOnR3``, ``fullOctaOnR3``, ``icoOnR3`` and ``fullIcoOnR3``
(``O3._combine_subgroups`` calls ``_combine_subgroups`` on the point group itself, which does not
implement it, or raises ``NotImplementedError`` for ``O_h``/``I_h``), and also on ``rot2dOnR3`` and
``dihedralOnR3``. Building the subgroup's own gspace gives the same gspace ``restrict`` would; its
elements are then matched to G's by their action on R^3, so a wrong match is refused, not used.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["FACTORIES", "gspace_of_group", "make", "order", "parse", "with_order"]

#: factory -> order of its fiber group as a function of its argument (None: no argument).
FACTORIES: dict[str, Any] = {
    "trivialOnR3": None, "invOnR3": None, "mirOnR3": None,
    "octaOnR3": None, "fullOctaOnR3": None, "icoOnR3": None, "fullIcoOnR3": None,
    "rot2dOnR3": lambda n: n, "dihedralOnR3": lambda n: 2 * n, "conicalOnR3": lambda n: 2 * n,
    "cylindricalOnR3": lambda n: 2 * n, "fullCylindricalOnR3": lambda n: 4 * n,
}
_FIXED_ORDER = {"trivialOnR3": 1, "invOnR3": 2, "mirOnR3": 2, "octaOnR3": 24, "fullOctaOnR3": 48,
                "icoOnR3": 60, "fullIcoOnR3": 120}
_GROUPS = {"O": "octaOnR3()", "Oh": "fullOctaOnR3()", "I": "icoOnR3()", "Ih": "fullIcoOnR3()"}
_EXPR = re.compile(r"([A-Za-z0-9]+)\(([0-9]*)\)")


def gspace_of_group(family: str) -> str:
    """escnn's gspace of a point group on R^3: ``O`` -> ``"octaOnR3()"`` (KeyError for others)."""
    return _GROUPS[family]


def parse(expr: str) -> tuple[str, int | None]:
    """``"rot2dOnR3(4)"`` -> ``("rot2dOnR3", 4)``; ValueError for anything else.

    >>> parse("rot2dOnR3(4)"), parse("octaOnR3()")
    (('rot2dOnR3', 4), ('octaOnR3', None))
    """
    match = _EXPR.fullmatch(expr.strip()) if isinstance(expr, str) else None
    if match is None or match.group(1) not in FACTORIES:
        raise ValueError(f"{expr!r} is not an escnn 3-D gspace gscli knows ({', '.join(FACTORIES)})")
    name, arg = match.group(1), match.group(2)
    if (FACTORIES[name] is None) != (arg == ""):
        raise ValueError(f"{expr!r}: {name} takes {'no argument' if FACTORIES[name] is None else 'one integer'}")
    return name, int(arg) if arg else None


def order(expr: str) -> int:
    """Order of the fiber group of ``expr``."""
    name, arg = parse(expr)
    return _FIXED_ORDER[name] if arg is None else int(FACTORIES[name](arg))


def make(gspaces: Any, expr: str) -> Any:
    """Build the gspace ``expr`` from the ``escnn.gspaces`` module the caller imported."""
    name, arg = parse(expr)
    factory = getattr(gspaces, name)
    return factory() if arg is None else factory(arg)


def with_order(m: int) -> list[str]:
    """Every expression gscli tries for a subgroup of ``m`` elements (axes along escnn's defaults)."""
    found = [f"{name}()" for name, k in _FIXED_ORDER.items() if k == m]
    for name, size in FACTORIES.items():
        if size is None:
            continue
        found += [f"{name}({n})" for n in range(2, m + 1) if size(n) == m]
    return found
