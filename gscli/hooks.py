"""What an upper layer lends a lower one: callables installed when the upper layer is imported.

The runtime (:mod:`gscli.nn`) never imports the build machinery (docs/architecture.md: it must run
with torch, numpy and h5py alone), yet :meth:`GroupDownsample.from_catalog` builds a missing operator
when it can. :mod:`gscli.build` installs its builder here when it is imported; the runtime calls
whatever is installed, and says how to build the file when nothing is.

>>> import gscli.hooks as hooks
>>> previous = hooks.install_builder(None)
>>> hooks.builder() is None
True
>>> _ = hooks.install_builder(previous)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Builder", "builder", "install_builder"]

#: ``builder(spec, folder) -> (path, seconds, selection)``: build the operator ``spec`` into the store
#: folder ``folder`` and say where it went, how long it took and why that subgroup.
Builder = Callable[[Any, Path], tuple[Path, float, str]]

_builder: Builder | None = None


def install_builder(fn: Builder | None) -> Builder | None:
    """Install ``fn`` as the builder the runtime uses for missing operators; return the previous one."""
    global _builder
    previous, _builder = _builder, fn
    return previous


def builder() -> Builder | None:
    """The installed builder, or ``None`` when no build layer has been imported."""
    return _builder
