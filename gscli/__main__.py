"""``gscli`` and ``python -m gscli``: the command line, or one line naming what an incomplete install lacks."""

from __future__ import annotations

import json
import signal
import sys
from typing import NoReturn

#: The command line's base dependencies (pyproject.toml), as pip installs them.
_CLI_MODULES = {"click": "click>=8.1", "rich": "rich>=13"}

#: Exit status after Ctrl-C (128 + SIGINT), as in :data:`gscli.cli.EXIT_INTERRUPTED`.
_EXIT_INTERRUPTED = 130


def _ignore_interrupts() -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):  # pragma: no cover - not the main thread
        pass


def _interrupted() -> NoReturn:
    """Ctrl-C before click runs the command (while the command line's modules load): the same ending
    as a Ctrl-C inside a command, ``Error: interrupted`` and status 130, and with ``--json`` the one
    error document."""
    _ignore_interrupts()  # a second Ctrl-C does not cut the message short
    args = sys.argv[1:]
    if "--json" in (args[: args.index("--")] if "--" in args else args):
        error = {"error": {"type": "Interrupted", "message": "interrupted", "exit_code": _EXIT_INTERRUPTED}}
        sys.stdout.write(json.dumps(error, indent=2) + "\n")
        sys.stdout.flush()
    sys.stderr.write("Error: interrupted\n")
    raise SystemExit(_EXIT_INTERRUPTED)


def _quiet_interrupts(hook):
    """An unraisable-exception hook that drops ``KeyboardInterrupt``: Python prints one raised in a
    ``__del__`` or weakref callback (a module being loaded, h5py) as "Exception ignored" with a
    traceback; :mod:`gscli._signals` has recorded it, and the command ends with status 130."""
    def quiet(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            return
        hook(unraisable)
    return quiet


def main() -> None:
    """Run the command line; without click or rich (an incomplete install), name the missing one and exit 1.

    Ctrl-C at any moment, the start-up included, exits 130 with one line (and ``--json``'s error
    document), never a traceback: SIGINT is watched (:mod:`gscli._signals`) from the first line on.
    Once the command has ended, SIGINT is ignored: its output and exit status stand while the
    interpreter shuts down (a Ctrl-C then used to kill the process after a complete result).
    """
    try:
        _run()
    except KeyboardInterrupt as exc:  # in the instant between the command's end and the line below
        _ignore_interrupts()
        if isinstance(exc.__context__, SystemExit):  # the command had ended: keep its status
            raise SystemExit(exc.__context__.code) from None
        _interrupted()
    finally:
        _ignore_interrupts()


def _run() -> None:
    from gscli._signals import interrupt_requested, watch_interrupts

    sys.unraisablehook = _quiet_interrupts(sys.unraisablehook)
    try:
        with watch_interrupts():
            try:
                from gscli.cli import main as cli
            except ModuleNotFoundError as exc:
                missing = (exc.name or "").split(".")[0]
                if missing not in _CLI_MODULES:
                    raise
                sys.stderr.write(f"Error: the gscli command line needs {missing}, a dependency of gscli that is not "
                                 f"installed; install it with: pip install '{_CLI_MODULES[missing]}'\n")
                raise SystemExit(1) from None
            if interrupt_requested():  # raised where Python discarded it (an import's __del__, say)
                raise KeyboardInterrupt
            cli()
    except KeyboardInterrupt:  # outside click's command, which handles its own (gscli.cli._Group)
        _interrupted()


if __name__ == "__main__":
    main()
