"""The ``gscli`` command line: a thin layer that parses, calls one library function, and prints.

The group and its conventions (errors, exit status, ``--json``) live in :mod:`gscli.cli._app`;
each command module registers itself on it when imported here.
"""

from gscli.cli import build as _build  # noqa: F401  (registers commands)
from gscli.cli import eval as _eval  # noqa: F401
from gscli.cli import inspect as _inspect  # noqa: F401
from gscli.cli import model as _model  # noqa: F401
from gscli.cli import subgroups as _subgroups  # noqa: F401
from gscli.cli import train as _train  # noqa: F401
from gscli.cli._app import EXIT_INTERRUPTED, main

__all__ = ["main", "EXIT_INTERRUPTED"]
