"""``gscli`` and ``python -m gscli``: the command line, or one line naming the extra it needs."""

from __future__ import annotations

import sys

_CLI_MODULES = ("click", "rich")


def main() -> None:
    """Run the command line; without click or rich, say which extra to install and exit with status 1."""
    try:
        from gscli.cli import main as cli
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in _CLI_MODULES:
            raise
        sys.stderr.write(f"Error: the gscli command line needs {missing}, which is not installed; "
                         "install it with: pip install 'gscli[cli]'\n")
        raise SystemExit(1) from None
    cli()


if __name__ == "__main__":
    main()
