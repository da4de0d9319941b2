"""Optional dependencies: import one, or fail with one line naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from gscli.errors import DependencyError

__all__ = ["need"]


def need(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :class:`DependencyError` naming ``pip install 'gscli[extra]'``.

    >>> need("json", "cli", "reading").__name__
    'json'
    >>> need("gscli_no_such_module", "cli", "plotting")
    Traceback (most recent call last):
    ...
    gscli.errors.DependencyError: plotting needs gscli_no_such_module, which is not installed; install it with: pip install 'gscli[cli]'
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or module).split(".")[0]
        raise DependencyError(f"{feature} needs {missing}, which is not installed; "
                              f"install it with: pip install 'gscli[{extra}]'") from None
