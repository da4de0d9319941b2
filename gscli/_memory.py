"""How much memory a new allocation can have: the one probe every build's memory refusal uses.

Builds of every family (finite groups, continuous groups) and the model commands compare their
estimated peak with :func:`available_memory` before they allocate, and refuse with the numbers
when it does not fit. It sits low (next to the store) so that families and the runtime can ask
without importing the build pipeline; :mod:`gscli.build` re-exports it.
"""

from __future__ import annotations

import os

__all__ = ["available_memory"]


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None
