"""The ``gscli`` command group and the conventions every command shares; commands register on :data:`main`.

Conventions shared by every command, kept here once (details: docs/cli.md):

* Library errors (:class:`gscli.errors.GscliError`) become one ``Error: ...`` line on stderr with
  exit status 2 (usage: the command line itself is wrong: bad spec, rate, option value) or 1
  (failures: checks, files, the store, the disk). Ctrl-C exits 130.
* With ``--json``, stdout holds exactly one JSON document: the command's result, or, when the
  command fails before printing it, ``{"error": {"type", "message", "exit_code"}}``.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from gscli import __version__
from gscli._signals import interrupt_requested, watch_interrupts
from gscli.cli._common import json_printed, print_json_error
from gscli.errors import GscliError

#: Exit status after Ctrl-C (128 + SIGINT, what shells report for a process stopped by Ctrl-C).
EXIT_INTERRUPTED = 130

# Commands whose files are all written atomically (old file or complete new one, nothing partial).
_ATOMIC_WRITERS = {"build"}


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A warning as one line on stderr, ``Warning: <message> (<category>)``: no file name, no source line."""
    from gscli.errors import printable

    text = " ".join(str(message).split())
    try:
        (file or sys.stderr).write(f"Warning: {printable(text)} ({category.__name__})\n")
    except OSError:  # pragma: no cover - stderr closed
        pass


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _wants_json(args: list[str]) -> bool:
    """``--json`` among the command's own arguments (before a ``--``)."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


class _Group(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["gscli.json"] = _wants_json(list(args))
        ctx.meta["gscli.command"] = next((a for a in args if not a.startswith("-")), None)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # e.g. ``gscli --json build``: an option of no command
            self._json_error(ctx, "UsageError", exc.format_message(), exc.exit_code)
            raise

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        """Parse the command line; Ctrl-C while parsing ends like Ctrl-C in a command (130, one line, JSON document)."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except KeyboardInterrupt:
            writer = next((a for a in args if not a.startswith("-")), None) in _ATOMIC_WRITERS
            message = "interrupted" + ("; no partial file was written" if writer else "")
            if _wants_json(list(args)):
                print_json_error("Interrupted", message, EXIT_INTERRUPTED)
            raise _Failure(message, EXIT_INTERRUPTED) from None

    def invoke(self, ctx: click.Context) -> Any:  # type: ignore[override]
        try:
            with watch_interrupts(), warnings.catch_warnings():
                warnings.showwarning = _show_warning
                result = super().invoke(ctx)
                if interrupt_requested():  # raised where Python discarded it (see gscli._signals)
                    raise KeyboardInterrupt
            return result
        except GscliError as exc:
            failure = _Failure(str(exc), exc.exit_code)
            kind = type(exc).__name__
        except KeyboardInterrupt:
            writer = ctx.meta.get("gscli.command") in _ATOMIC_WRITERS
            note = ctx.meta.get("gscli.interrupted")  # a command's own word on what it left (gscli train)
            failure = _Failure("interrupted" + ("; no partial file was written" if writer else "")
                               + (f"; {note}" if note else ""), EXIT_INTERRUPTED)
            kind = "Interrupted"
        except click.ClickException as exc:
            self._json_error(ctx, "UsageError" if isinstance(exc, click.UsageError) else type(exc).__name__,
                             exc.format_message(), exc.exit_code)
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug: keep its traceback, but --json still gets its one document
            self._json_error(ctx, "InternalError", f"{type(exc).__name__}: {exc}", 1)
            raise
        self._json_error(ctx, kind, failure.message, failure.exit_code)
        raise failure from None

    @staticmethod
    def _json_error(ctx: click.Context, kind: str, message: str, exit_code: int) -> None:
        if ctx.meta.get("gscli.json") and not json_printed(ctx):
            print_json_error(kind, message, exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gscli")
def main() -> None:
    """Group downsampling operators with equivariant anti-aliasing, for G-CNNs.

    A feature on a finite group G (the regular representation, tensors of shape
    (batch, C*|G|, ...)) is downsampled to a subgroup H of index R = |G|/|H| by first projecting it
    onto a bandlimited, H-invariant subspace (anti-aliasing), then keeping its values on H.
    Bandlimited signals are reconstructed exactly from those samples.

    \b
    Typical session:
      gscli subgroups D12             what can D12 be downsampled to?
      gscli build D12 --rate 2        least-aliasing subgroup of index 2
      gscli build D12 --subgroup C12  or name the subgroup type
      gscli build                     the default catalog into operators/
      gscli inspect operators/D12-D6.h5 --plot d12-d6.png
      gscli eval --catalog            re-check every file in the store

    \b
    Exit status: 0 ok, 2 usage error, 1 failure (checks, files, store), 130 Ctrl-C.
    The store is --out, else $GSCLI_STORE, else operators/ (the only folder created
    on demand). Details: docs/cli.md.
    """
