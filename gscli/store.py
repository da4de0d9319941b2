"""The operator store: the folder operator files live in, and how names map to files.

The store is ``$GSCLI_STORE`` if set, else ``operators/`` (relative to the working directory); the
command line's ``--out`` overrides both. File names come from parsed specs (``D12-D6.h5``): spec
strings hold only letters and digits, so a name can never leave the store folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from gscli.specs import OperatorSpec

__all__ = ["STORE_ENV", "default_store", "operator_path"]

STORE_ENV = "GSCLI_STORE"


def default_store() -> Path:
    """``$GSCLI_STORE`` if set and non-empty, else ``operators``."""
    return Path(os.environ.get(STORE_ENV) or "operators")


def operator_path(spec: OperatorSpec | str, store: Path | str | None = None) -> Path:
    """Path of the file for ``spec`` (``"D12>D6"``, ``"D12-D6"`` or an :class:`OperatorSpec`) in ``store``."""
    parsed = spec if isinstance(spec, OperatorSpec) else OperatorSpec.parse(spec)
    folder = Path(store) if store is not None else default_store()
    path = folder / f"{parsed.stem}.h5"
    assert path.parent == folder and parsed.stem.replace("-", "").isalnum()
    return path
