"""Find an operator file: the shipped catalog first, then the store, building on demand with escnn.

Lookup order for a name such as ``"D12-D6"``:

1. the file shipped with gscli (``gscli/catalog/``) when the default catalog lists the name: it is
   verified on load, tested to equal what this version's ``gscli build`` writes, and read-only;
2. the store (``store``, else ``$GSCLI_STORE``, else ``operators/``);
3. a build into the store, when ``build`` is true, escnn is installed and the build layer is loaded
   (:mod:`gscli.build` installs its builder in :mod:`gscli.hooks` when imported; this module never
   imports it, so that the runtime needs torch, numpy and h5py only).

Shipped files come first so that a store file (made by another gscli version or machine, or
changed since) can never silently replace the operator this version ships: a store file of a
shipped name that differs from the shipped one is not used, with a :class:`StoreFileIgnoredWarning`
that says how to load it on purpose (``GroupDownsample.from_file``).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

from gscli import hooks
from gscli.catalog import shipped_path
from gscli.errors import FormatError
from gscli.specs import OperatorSpec
from gscli.store import operator_path

__all__ = ["catalog_file", "escnn_available", "OperatorBuiltWarning", "StoreFileIgnoredWarning"]


def escnn_available() -> bool:
    """Whether escnn can be imported (checked without importing it)."""
    return importlib.util.find_spec("escnn") is not None


def catalog_file(name: str | OperatorSpec, store: str | Path | None = None, build: bool = True) -> Path:
    """Path of the operator file for ``name``: the shipped one, else the store's, built if missing and possible.

    Raises
    ------
    gscli.errors.SpecError
        ``name`` is not an operator spec such as ``"D12-D6"``.
    gscli.errors.FormatError
        The file is missing and cannot be built here (escnn not installed, or ``build=False``).
    gscli.errors.StoreError
        The file is missing and the store folder cannot take it: it does not exist (only
        ``operators/`` is created) or files cannot be created in it.
    """
    spec = name if isinstance(name, OperatorSpec) else OperatorSpec.parse(name)
    path = operator_path(spec, store)
    shipped = shipped_path(spec)
    if shipped is not None:
        if path.exists():
            _warn_if_different(path, shipped, spec)
        return shipped
    if path.exists():
        return path
    command = f"gscli build {spec.group} --subgroup {spec.subgroup} --out {path.parent}"
    if not build:
        raise FormatError(f"{path}: no operator file for {spec} in the store; build it with: {command}")
    if not escnn_available():
        raise FormatError(
            f"{path}: no operator file for {spec} in the store, and escnn (needed to build one) is not installed; "
            f"build it where escnn is installed (pip install 'gscli[build]') with: {command}, "
            "then copy the file into this store (or point $GSCLI_STORE at a folder holding it)"
        )
    build_into = hooks.builder()
    if build_into is None:
        raise FormatError(
            f"{path}: no operator file for {spec} in the store; build it with: {command} "
            "(or `import gscli.build` first: with the build layer loaded, from_catalog builds missing operators)"
        )
    built, seconds, selection = build_into(spec, path.parent)
    warnings.warn(
        f"operator file {path} was missing: built {spec} with escnn in {seconds:.1f} s "
        f"({selection}); keep the file to skip this build next time",
        OperatorBuiltWarning,
        stacklevel=3,
    )
    return built


def _warn_if_different(path: Path, shipped: Path, spec: OperatorSpec) -> None:
    """Warn when the store's file of a shipped operator holds another operator than the shipped file.

    Rounding differences (another machine's LAPACK) are the same operator; see :func:`gscli.catalog.same_operator`.
    """
    from gscli.catalog import same_operator
    from gscli.fileformat import read_operator

    try:
        ours = read_operator(shipped)
    except FormatError:
        return  # loading the shipped file reports it, with the reinstall command
    try:
        same = same_operator(read_operator(path), ours)
        why = "it holds another operator (made by another gscli version, or changed)"
    except FormatError as exc:
        same, why = False, f"it does not verify ({exc})"
    if not same:
        warnings.warn(
            f"{path} is not used: gscli ships its own {spec} operator ({shipped}) and {why}; "
            f"to use this file on purpose: GroupDownsample.from_file({str(path)!r})",
            StoreFileIgnoredWarning,
            stacklevel=4,
        )


class OperatorBuiltWarning(UserWarning):
    """``from_catalog`` did not find an operator file and built it with escnn."""


class StoreFileIgnoredWarning(UserWarning):
    """``from_catalog`` used the shipped operator and ignored a different store file of the same name."""
