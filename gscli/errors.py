"""Exceptions raised by gscli.

Library code raises these; only the command-line layer turns them into messages and exit codes
(usage errors exit with 2, failures with 1).
"""

from __future__ import annotations

__all__ = [
    "GscliError",
    "printable",
    "SpecError",
    "SubgroupError",
    "SizeError",
    "FormatError",
    "CheckError",
    "StoreError",
    "DependencyError",
    "InputError",
    "shorten",
]

#: Echoed user input longer than this is cut in error messages.
ECHO_LIMIT = 60


def shorten(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr`` of user input for an error message, cut after ``limit`` characters.

    >>> shorten("D12")
    "'D12'"
    >>> shorten("D" * 5000, limit=4)
    "'DDDD'... (5000 characters)"
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit + 2 else f"{text[:limit]}... ({len(text)} characters)"


def printable(value: object) -> str:
    r"""``str(value)`` with every non-printable character escaped, for showing strings read from files.

    C0/C1 control characters, DEL, bidirectional overrides and other format characters become
    ``\xNN`` / ``\uNNNN``, so an escape sequence stored in a file cannot act on a terminal.

    >>> printable("r^2\x1b[2J\u202e")
    'r^2\\x1b[2J\\u202e'
    """
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(value))


class GscliError(Exception):
    """Base class of every error gscli raises on purpose."""

    #: Exit status the command line uses for this error.
    exit_code: int = 1


class SpecError(GscliError, ValueError):
    """A group, subgroup or operator spec string is malformed or names nothing we support."""

    exit_code = 2


class SubgroupError(GscliError, ValueError):
    """The requested rate or subgroup type does not exist in the group."""

    exit_code = 2


class SizeError(GscliError, ValueError):
    """The group is too large to build operators for in memory."""

    exit_code = 2


class FormatError(GscliError):
    """An operator file is missing, unreadable, corrupted, foreign or of a newer format."""


class CheckError(GscliError):
    """A computed operator failed one of its guarantees; nothing was written."""


class StoreError(GscliError):
    """The operator store (output folder) cannot be used: missing, not writable, or the file exists."""


class DependencyError(GscliError):
    """An optional dependency (escnn) is needed but not installed or broken."""


class InputError(GscliError, ValueError):
    """A tensor handed to the runtime layer has the wrong shape, dtype, device or type."""

    exit_code = 2
