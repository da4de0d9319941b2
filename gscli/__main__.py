"""``gscli`` and ``python -m gscli``: the command line, or one line naming what an incomplete install lacks."""

from __future__ import annotations

import sys

#: The command line's base dependencies (pyproject.toml), as pip installs them.
_CLI_MODULES = {"click": "click>=8.1", "rich": "rich>=13"}


def main() -> None:
    """Run the command line; without click or rich (an incomplete install), name the missing one and exit 1."""
    try:
        from gscli.cli import main as cli
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in _CLI_MODULES:
            raise
        sys.stderr.write(f"Error: the gscli command line needs {missing}, a dependency of gscli that is not installed; "
                         f"install it with: pip install '{_CLI_MODULES[missing]}'\n")
        raise SystemExit(1) from None
    cli()


if __name__ == "__main__":
    main()
