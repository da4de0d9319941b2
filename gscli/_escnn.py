"""Everything gscli asks of escnn, in one place.

escnn is needed to *build* operators (it defines the groups and their element order), never to
apply them. This module imports it quietly (its disk cache goes to a user cache folder, nothing it
prints reaches stdout), converts what it returns to numpy tables once, and caches them per process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gscli.errors import DependencyError
from gscli.groups import (
    FiniteGroup,
    Subgroup,
    classify_point_group,
    cyclic_table,
    dihedral_table,
    enumerate_subgroups,
    induced_table,
    planar_group,
    planar_subgroups,
    rotation_name,
)
from gscli.specs import GroupSpec
from gscli.store import why_not_writable

__all__ = ["escnn_group", "escnn_version", "load_group", "subgroups", "cache_dir"]

# Faithful 3-dimensional irreps (the standard representation on R^3) of the point groups.
_STANDARD_IRREP = {"O": (1,), "I": (1,), "Oh": ((1,), (1,), 0), "Ih": ((1,), (1,), 0)}


def cache_dir() -> Path:
    """gscli's user cache folder: ``$GSCLI_CACHE_DIR``, else ``$XDG_CACHE_HOME/gscli``, else ``~/.cache/gscli``."""
    if os.environ.get("GSCLI_CACHE_DIR"):
        return Path(os.environ["GSCLI_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gscli"


def _usable_cache(location: Path) -> str | None:
    """``location`` if escnn can cache there; else a temporary folder for this process; else ``None``
    (no disk cache). A fallback is announced in one line on stderr, never a traceback."""
    try:
        location.mkdir(parents=True, exist_ok=True)
        reason = why_not_writable(location)
    except OSError as exc:  # a file in the way, a read-only file system, no permission
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if reason is None:
        return str(location)
    try:
        fallback: str | None = tempfile.mkdtemp(prefix="gscli-escnn-")
        atexit.register(shutil.rmtree, fallback, ignore_errors=True)
        instead = f"using a temporary cache in {fallback} for this run"
    except OSError:
        fallback, instead = None, "running without a disk cache"
    sys.stderr.write(f"gscli: escnn's cache folder {str(location)!r} is not writable ({reason}); {instead} "
                     "(set GSCLI_CACHE_DIR to a writable folder to keep the cache)\n")
    return fallback


@contextlib.contextmanager
def _quiet():
    """Send anything escnn prints to stderr, so stdout stays clean for ``--json``."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


@lru_cache(maxsize=None)
def _escnn_group_module() -> Any:
    """Import ``escnn.group`` with its joblib cache redirected to :func:`cache_dir`."""
    try:
        import joblib
    except ImportError as exc:  # pragma: no cover - joblib comes with escnn
        raise DependencyError("building operators needs escnn: pip install 'gscli[build]'") from exc
    location = _usable_cache(cache_dir() / "escnn")
    original = joblib.Memory

    class _UserCacheMemory(original):  # type: ignore[misc, valid-type]
        def __init__(self, _location: Any = None, *args: Any, **kwargs: Any) -> None:
            kwargs["verbose"] = 0
            super().__init__(location, *args, **kwargs)

    joblib.Memory = _UserCacheMemory
    try:
        with _quiet():
            from escnn import group  # a loud import: escnn's top level hides failures under numpy 2
    except ImportError as exc:
        raise DependencyError(
            f"building operators needs escnn (with numpy < 2): {exc}; "
            "install it with: pip install 'gscli[build]'"
        ) from exc
    finally:
        joblib.Memory = original
    numerical = sys.modules.get("escnn.group._numerical")
    if numerical is not None and hasattr(numerical, "randomized_svd"):
        numerical.randomized_svd = None  # scikit-learn >= 1.2 breaks it on a cold cache
    return group


def escnn_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("escnn")
    except PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=None)
def escnn_group(spec: GroupSpec) -> Any:
    """The escnn group object for ``spec`` (cached)."""
    group = _escnn_group_module()
    with _quiet():
        if spec.family == "C":
            return group.cyclic_group(spec.n)
        if spec.family == "D":
            return group.dihedral_group(spec.n)
        return {
            "O": group.octa_group,
            "Oh": group.full_octa_group,
            "I": group.ico_group,
            "Ih": group.full_ico_group,
        }[spec.family]()


def _planar_index(spec: GroupSpec, element: Any) -> int:
    value = element.to("int")
    if spec.family == "C":
        return int(value)
    flip, k = value
    return int(flip) * spec.n + int(k)


@lru_cache(maxsize=None)
def load_group(spec: GroupSpec) -> FiniteGroup:
    """The tables of ``spec`` in escnn's element order (cached per process).

    Cyclic and dihedral groups are written down in closed form (:func:`gscli.groups.planar_group`,
    escnn is not asked: its regular representation of C_4096 alone takes gigabytes); point-group
    tables come from products of escnn's standard 3x3 representation, with escnn's generators.
    """
    if spec.planar:
        return planar_group(spec.family, spec.n)
    G = escnn_group(spec)
    with _quiet():
        rho = G.irrep(*_STANDARD_IRREP[spec.family])
        matrices = np.stack([np.asarray(rho(g), dtype=np.float64) for g in G.elements])
        generators = tuple(_match(matrices, np.asarray(rho(g), dtype=np.float64)) for g in G.generators)
        identity = _match(matrices, np.eye(3))
    products = np.einsum("aij,bjk->abik", matrices, matrices).reshape(-1, 9)
    flat = matrices.reshape(-1, 9)
    dist = ((products[:, None, :] - flat[None, :, :]) ** 2).sum(-1)
    cayley = dist.argmin(axis=1).reshape(len(flat), len(flat)).astype(np.int64)
    if dist.min(axis=1).max() > 1e-12:
        raise RuntimeError(f"{spec}: escnn's standard representation is not closed under products")
    names = tuple(rotation_name(m) for m in matrices)
    return FiniteGroup(str(spec), cayley, identity, generators, names, matrices)


def _match(matrices: np.ndarray, m: np.ndarray) -> int:
    dist = ((matrices - m) ** 2).sum(axis=(1, 2))
    i = int(dist.argmin())
    if dist[i] > 1e-12:
        raise RuntimeError("an escnn element has no match in the group's element list")
    return i


def _planar_subgroups(spec: GroupSpec, order: int | None) -> list[Subgroup]:
    """C_M (and D_M for every reflection axis) inside C_N or D_N: escnn's subgroups, in closed form."""
    result = []
    tables: dict[str, np.ndarray] = {}  # one table per type, shared by its copies (read-only)
    for type_name, nodes, sg_id in planar_subgroups(spec.family, spec.n, order):
        if type_name not in tables:
            tables[type_name] = cyclic_table(len(nodes)) if type_name[0] == "C" else dihedral_table(len(nodes) // 2)
            tables[type_name].setflags(write=False)
        table = tables[type_name]
        result.append(Subgroup(type_name, nodes, table, 0, f"escnn {spec.family}{spec.n}.subgroup({sg_id!r})", sg_id))
    return result


def _power_nodes(group: FiniteGroup, g: int, k: int) -> np.ndarray:
    nodes = [group.identity]
    for _ in range(k - 1):
        nodes.append(int(group.cayley[g, nodes[-1]]))
    return np.array(nodes, dtype=np.int64)


def _order_point_subgroup(spec: GroupSpec, group: FiniteGroup, elements: frozenset[int], type_name: str) -> Subgroup:
    """Put a point subgroup's elements in escnn's order where escnn has the group (C_k, D_k, O, I)."""
    ordered = sorted(elements)
    if type_name == str(spec):
        return Subgroup(type_name, np.arange(group.order, dtype=np.int64), group.cayley, group.identity, "the whole group")
    if type_name.startswith("C") and type_name[1:].isdigit():
        k = int(type_name[1:])
        g = next(x for x in ordered if group.element_order(x) == k)
        return Subgroup(type_name, _power_nodes(group, g, k), cyclic_table(k), 0, f"escnn C{k}, generated by {group.element_names[g]}")
    if type_name.startswith("D") and type_name[1:].isdigit():
        k = int(type_name[1:])
        r = next(x for x in ordered if x != group.identity and group.element_order(x) == k)
        rotations = _power_nodes(group, r, k)
        s = next(x for x in ordered if x not in set(rotations.tolist()))
        nodes = np.concatenate([rotations, group.cayley[rotations, s]])
        return Subgroup(type_name, nodes, dihedral_table(k), 0,
                        f"escnn D{k}, r = {group.element_names[r]}, s = {group.element_names[s]}")
    if type_name in ("O", "I") and spec.family in ("Oh", "Ih"):
        sub = load_group(GroupSpec(type_name))
        assert group.matrices is not None and sub.matrices is not None
        nodes = np.array([_match(group.matrices, m) for m in sub.matrices], dtype=np.int64)
        return Subgroup(type_name, nodes, sub.cayley, sub.identity, f"escnn {type_name} inside {spec}")
    nodes = np.array(ordered, dtype=np.int64)
    identity = ordered.index(group.identity)
    return Subgroup(type_name, nodes, induced_table(group.cayley, nodes), identity, "closure, in G's element order")


@lru_cache(maxsize=None)
def subgroups(spec: GroupSpec, order: int | None = None) -> tuple[Subgroup, ...]:
    """Every subgroup of ``spec`` (of the given order, if any), with its type and element order.

    Planar groups: escnn's subgroups C_M and D_M (every reflection axis). Point groups: all
    subgroups, found by closure and named by their Schoenflies type.
    """
    if spec.planar:
        return tuple(_planar_subgroups(spec, order))
    if order is not None:
        return tuple(h for h in subgroups(spec) if h.order == order)
    group = load_group(spec)
    found = []
    for elements in enumerate_subgroups(group):
        type_name = classify_point_group(group, elements)
        found.append(_order_point_subgroup(spec, group, elements, type_name))
    return tuple(found)


@lru_cache(maxsize=None)
def planar_lift(spec: GroupSpec, channels: int, kernel_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random G-equivariant lifting convolution (escnn ``R2Conv``), exported as plain filters.

    The convolution maps one scalar (trivial) field on the plane to ``channels`` regular fields of
    G = C_N or D_N (escnn's ``rot2dOnR2(N)`` / ``flipRot2dOnR2(N)``); its weights are escnn's
    default initialisation drawn under ``torch.manual_seed(seed)`` (the global torch generator is
    left as it was).

    Returns
    -------
    filters : ndarray of float64, shape (channels * |G|, 1, kernel_size, kernel_size)
        The expanded filters; output channel ``c * |G| + i`` is field ``c`` at element ``g_i``.
    plane : ndarray of float64, shape (|G|, 2, 2)
        How each element acts on the plane (escnn's ``basespace_action``), in escnn's element order,
        for coordinates (x, y) with x along the image columns and y pointing up the rows.
    """
    if not spec.planar:
        raise ValueError(f"planar_lift needs C<N> or D<N>, not {spec}")
    _escnn_group_module()
    import torch

    with _quiet():
        from escnn import gspaces
        from escnn import nn as enn

        gspace = gspaces.rot2dOnR2(spec.n) if spec.family == "C" else gspaces.flipRot2dOnR2(spec.n)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            field_in = enn.FieldType(gspace, [gspace.trivial_repr])
            field_out = enn.FieldType(gspace, channels * [gspace.regular_repr])
            conv = enn.R2Conv(field_in, field_out, kernel_size=kernel_size, padding=kernel_size // 2, bias=False)
        filters = conv.eval().export().weight.detach().to(torch.float64).numpy().copy()
        group = gspace.fibergroup
        plane = np.zeros((group.order(), 2, 2), dtype=np.float64)
        for g in group.elements:
            plane[_planar_index(spec, g)] = np.asarray(gspace.basespace_action(g), dtype=np.float64)
    return filters, plane
