"""Find an operator file in the store, building it on demand when escnn is installed."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

from gscli.errors import FormatError
from gscli.specs import OperatorSpec
from gscli.store import operator_path

__all__ = ["catalog_file", "escnn_available"]


def escnn_available() -> bool:
    """Whether escnn can be imported (checked without importing it)."""
    return importlib.util.find_spec("escnn") is not None


def catalog_file(name: str | OperatorSpec, store: str | Path | None = None, build: bool = True) -> Path:
    """Path of the operator file for ``name`` in the store; build it if missing and possible.

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
    from gscli.build import build as build_operator

    result = build_operator(spec.group, None, spec.subgroup, out=path.parent)
    warnings.warn(
        f"operator file {path} was missing: built {spec} with escnn in {result.seconds:.1f} s "
        f"({result.selection}); keep the file to skip this build next time",
        OperatorBuiltWarning,
        stacklevel=3,
    )
    return result.path


class OperatorBuiltWarning(UserWarning):
    """``from_catalog`` did not find an operator file and built it with escnn."""
