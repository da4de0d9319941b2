"""escnn ``GeometricTensor`` support for the runtime layer, without importing escnn.

A ``GeometricTensor`` can only exist if the caller imported ``escnn.nn``; this module finds escnn's
classes in ``sys.modules`` and never imports it. The restricted gspace (the one H-fields live on)
is found once per input gspace and checked element by element against the operator file's
``subgroup_nodes``: planar gspaces (C_N, D_N on R^2 or with no base space) through
``gspace.restrict(escnn_subgroup_id)`` and its inclusion map; 3-D gspaces through the escnn gspace
the file names (``escnn_gspace``, e.g. ``rot2dOnR3(4)`` for the C4 about z in O), accepted only if
its elements act on R^3 as the file's ``subgroup_nodes`` of G do, in H's order.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from torch import Tensor

from gscli import _gspaces3d
from gscli.nn._cosets import Canonicalized

#: The layer these helpers serve (:class:`gscli.nn.GroupDownsample`); not imported, since that module
#: imports this one.
GroupDownsample = Any

__all__ = ["is_geometric", "downsample", "upsample"]

# escnn's fiber-group names for gscli's group specs.
_ESCNN_NAMES = {"O": "Octahedral", "Oh": "FullOctahedral", "I": "Icosahedral", "Ih": "FullIcosahedral"}


def _escnn_nn() -> Any:
    return sys.modules.get("escnn.nn")


def is_geometric(x: Any) -> bool:
    """True if ``x`` is an escnn ``GeometricTensor`` (False, cheaply, when escnn was never imported)."""
    module = _escnn_nn()
    return module is not None and isinstance(x, module.GeometricTensor)


def _escnn_group_name(spec: Any) -> str:
    return _ESCNN_NAMES.get(str(spec), str(spec))


def _error(message: str) -> Exception:
    from gscli.errors import InputError

    return InputError(message)


def _fields(layer: GroupDownsample, field_type: Any, order: int, which: str) -> int:
    """Number of regular fields in ``field_type``; raises unless it is C regular fields of ``which``."""
    spec = layer.spec.group if which == "G" else layer.spec.subgroup
    group = field_type.gspace.fibergroup
    expected = _escnn_group_name(spec)
    named = str(spec) in _ESCNN_NAMES or str(spec)[:1] in "CD" and str(spec)[1:].isdigit()  # else C2h, C4v...
    if group.order() != order or (named and group.name != expected):
        raise _error(
            f"the GeometricTensor's gspace has fiber group {group.name} (order {group.order()}); "
            f"this layer ({layer.spec}) needs regular fields of {spec} (escnn's {expected}, order {order})"
        )
    bad = sorted({r.name for r in field_type.representations if r.name != "regular"})
    if bad:
        raise _error(
            f"the GeometricTensor holds {', '.join(bad)} fields; this layer ({layer.spec}) takes only regular "
            f"fields of {spec} (build the FieldType as [gspace.regular_repr] * C)"
        )
    return len(field_type.representations)


def _index_by_inclusion(group: Any, inclusion: Any, subgroup: Any) -> list[int]:
    elements = list(group.elements)
    return [elements.index(inclusion(h)) for h in subgroup.elements]


def _index_by_action(gspace: Any, sub_gspace: Any) -> list[int] | None:
    actions = np.stack([np.asarray(gspace.basespace_action(g), dtype=np.float64) for g in gspace.fibergroup.elements])
    found = []
    for h in sub_gspace.fibergroup.elements:
        distance = ((actions - np.asarray(sub_gspace.basespace_action(h), dtype=np.float64)) ** 2).sum(axis=(1, 2))
        i = int(distance.argmin())
        if distance[i] > 1e-10:
            return None
        found.append(i)
    return found


def _candidates_3d(layer: GroupDownsample) -> list[str]:
    """escnn 3-D gspaces that may hold H-fields: the one the file names, else every one of order |H|."""
    if layer.escnn_gspace is not None:
        return [layer.escnn_gspace] if layer.escnn_gspace else []
    return _gspaces3d.with_order(layer.subgroup_order)


def _sub_gspace(layer: GroupDownsample, gspace: Any) -> Any:
    """The gspace of H-fields for ``gspace`` (cached per gspace name), verified against the file.

    Planar gspaces: ``gspace.restrict(escnn_subgroup_id)``, checked through its inclusion map. 3-D
    gspaces: escnn's ``GSpace3D.restrict`` raises for point groups (escnn 1.0.11, see
    :mod:`gscli._gspaces3d`), so H's own gspace is built (the file's ``escnn_gspace``; files
    without one: each of escnn's 3-D gspaces of order |H|) and accepted only if its elements act
    on R^3 as the file's ``subgroup_nodes`` of G do, in H's order.
    """
    key = gspace.name
    if key in layer._escnn_cache:
        return layer._escnn_cache[key]
    nodes = layer.subgroup_nodes.tolist()
    found = None
    tried = []
    if getattr(gspace, "dimensionality", None) == 3:
        gspaces = sys.modules.get("escnn.gspaces")
        for expr in _candidates_3d(layer) if gspaces is not None else []:
            sub_gspace = _gspaces3d.make(gspaces, expr)
            tried.append(sub_gspace.name)
            if sub_gspace.fibergroup.order() == len(nodes) and _index_by_action(gspace, sub_gspace) == nodes:
                found = sub_gspace
                break
    elif layer.escnn_subgroup_id is not None:
        sub_gspace, inclusion, _ = gspace.restrict(layer.escnn_subgroup_id)
        tried.append(f"restrict({layer.escnn_subgroup_id!r})")
        if _index_by_inclusion(gspace.fibergroup, inclusion, sub_gspace.fibergroup) == nodes:
            found = sub_gspace
    if found is None:
        detail = f"tried {', '.join(tried)}, whose elements differ from the file's" if tried else "escnn offers none"
        raise _error(
            f"no escnn gspace of {layer.spec.subgroup}-fields matches this {layer.spec} operator on {gspace.name} "
            f"({detail}); apply the layer to the plain tensor (x.tensor) instead"
        )
    layer._escnn_cache[key] = found
    layer._escnn_cache["partner:" + found.name] = gspace
    return found


def _wrap(tensor: Tensor, gspace: Any, fields: int, coords: Any) -> Any:
    enn = _escnn_nn()
    field_type = enn.FieldType(gspace, [gspace.regular_repr] * fields)
    if coords is None:
        return enn.GeometricTensor(tensor, field_type)
    return enn.GeometricTensor(tensor, field_type, coords)


def downsample(layer: GroupDownsample, x: Any) -> Any:
    """``layer.forward`` on a GeometricTensor of C regular G-fields."""
    fields = _fields(layer, x.type, layer.group_order, "G")
    sub_gspace = _sub_gspace(layer, x.type.gspace)
    out = layer._down(x.tensor)
    coords = getattr(x, "coords", None)
    if isinstance(out, Canonicalized):
        return Canonicalized(_wrap(out.output, sub_gspace, fields, coords), out.coset)
    return _wrap(out, sub_gspace, fields, coords)


def upsample(layer: GroupDownsample, y: Any, coset: Tensor | None, gspace: Any) -> Any:
    """``layer.upsample`` on a GeometricTensor of C regular H-fields."""
    fields = _fields(layer, y.type, layer.subgroup_order, "H")
    if gspace is None:
        gspace = layer._escnn_cache.get("partner:" + y.type.gspace.name)
        if gspace is None:
            raise _error(
                f"upsample does not know the gspace of {layer.spec.group}-fields for {y.type.gspace.name}: "
                "pass gspace=..., or downsample a GeometricTensor of that gspace with this layer first"
            )
    elif _sub_gspace(layer, gspace).name != y.type.gspace.name:
        raise _error(f"the GeometricTensor lives on {y.type.gspace.name}, not on the {layer.spec.subgroup} "
                     f"gspace of {gspace.name}")
    out = layer._up(y.tensor, coset)
    return _wrap(out, gspace, fields, getattr(y, "coords", None))
