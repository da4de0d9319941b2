"""Shared pieces of the command line: options, consoles, JSON output."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from gscli.errors import printable
from gscli.specs import GroupSpec, OperatorSpec
from gscli.store import DEFAULT_STORE, STORE_ENV


def folder_option_value(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A store folder option: an empty value is a usage error (an empty $GSCLI_STORE counts as unset)."""
    if value is not None and str(value) == "":
        raise click.BadParameter(f"empty; name a folder, or leave the option out for ${STORE_ENV} or {DEFAULT_STORE}/")
    return value


out_option = click.option(
    "--out",
    "out",
    type=str,
    default=DEFAULT_STORE,
    show_default=True,
    envvar=STORE_ENV,
    show_envvar=True,
    callback=folder_option_value,
    metavar="OUT",
    help=f"Operator store: the folder operator files are written to (must exist, except {DEFAULT_STORE}/, "
         "which is created).",
)

def _plot_value(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--plot`` (``inspect``, ``eval-model``), checked before any work, one rule for both: a name
    that does not end in .png, or in a folder that does not exist, is a bad option value, a usage
    error (exit status 2, docs/cli.md)."""
    if value is None:
        return None
    from pathlib import Path

    path = Path(value)
    if path.suffix.lower() != ".png":
        raise click.BadParameter(f"{str(path)!r} must end in .png")
    if not path.parent.is_dir():
        raise click.BadParameter(f"folder {str(path.parent)!r} for {str(path)!r} does not exist")
    return path


def plot_option(help_text: str) -> Callable[[Any], Any]:
    """The ``--plot OUT.png`` option (see :func:`_plot_value`)."""
    return click.option("--plot", "plot", type=click.Path(dir_okay=False), metavar="OUT.png",
                        callback=_plot_value, help=help_text)


#: Seeds: what numpy and torch both accept.
SEED = click.IntRange(0, 2**32 - 1)
json_option = click.option("--json", "as_json", is_flag=True, help='Print one JSON document on stdout, nothing else; on errors {"error": {"type", "message", "exit_code"}}.')


def stdout_console() -> Console:
    """Tables on stdout; 120 columns when stdout is not a terminal (pipes, files, tests)."""
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 120)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def plain(value: Any) -> Text:
    r"""``value`` as literal terminal text: never read as rich markup, control characters escaped.

    Strings from files (names, attributes) and paths go through this before they are printed, so an
    escape sequence in a file cannot reach the terminal and ``[red]`` or ``[link=...]`` show as
    written. Non-printable characters (C0/C1 controls, DEL, bidirectional overrides and other format
    characters) become ``\xNN`` / ``\uNNNN``.

    >>> plain("[red]e\x1b]8;;x\x07").plain
    '[red]e\\x1b]8;;x\\x07'
    """
    return Text(printable(value))


def stored_checks_text(stored: dict[str, Any]) -> str:
    """The ``stored checks`` row of every ``inspect`` view: what the build measured, and how to re-measure."""
    return (f"{stored['passed']}/{stored['count']} passed at build time"
            + (f"; failed: {', '.join(map(str, stored['failed']))}" if stored["failed"] else "")
            + " (re-measure with: gscli eval FILE)")


def add_facts(table: Any, rows: list[tuple[str, Any]]) -> None:
    """Add (key, value) rows to a facts table; values hold strings from the file: literal text, never markup."""
    for key, value in rows:
        table.add_row(key, value if isinstance(value, Text) else plain(value))


_JSON_PRINTED = "gscli.json_printed"


def strict_json(document: Any) -> Any:
    """``document`` with every non-finite float (NaN, ±inf) replaced by ``None``: JSON has no such
    numbers, and a reader that follows the standard rejects Python's ``NaN`` / ``Infinity``.

    >>> strict_json({"a": float("nan"), "b": [1.0, float("inf")], "c": "NaN"})
    {'a': None, 'b': [1.0, None], 'c': 'NaN'}
    """
    if isinstance(document, float):
        return document if math.isfinite(document) else None
    if isinstance(document, dict):
        return {key: strict_json(value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [strict_json(value) for value in document]
    return document


def print_json(document: Any) -> None:
    """Print the command's one JSON document on stdout (and remember that it was printed).

    Strict JSON: a value that is not a finite number (an undefined share, say) is ``null``.
    """
    sys.stdout.write(json.dumps(strict_json(document), indent=2, sort_keys=False, allow_nan=False) + "\n")
    sys.stdout.flush()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_JSON_PRINTED] = True


def json_printed(ctx: click.Context) -> bool:
    """Whether the command already printed its JSON document."""
    return bool(ctx.meta.get(_JSON_PRINTED))


def print_json_error(kind: str, message: str, exit_code: int) -> None:
    """The JSON document of a command that failed before printing its result."""
    print_json({"error": {"type": kind, "message": message, "exit_code": exit_code}})


def parse_group_or_operator(text: str) -> GroupSpec | OperatorSpec:
    """``D12`` is a group; ``D12>D6`` / ``D12-D6`` name the subgroup too."""
    if any(sep in text for sep in "<>-"):
        return OperatorSpec.parse(text)
    return GroupSpec.parse(text)


@contextlib.contextmanager
def progress_bar(verb: str, total: int, label: Callable[[Any], str]) -> Iterator[Callable[[Any, Any], None]]:
    """A rich progress bar on stderr (shown on terminals only) and the callback the library calls.

    The callback takes ``(item, result)``: ``result is None`` when work on ``item`` starts, and the
    result when it is done.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = stderr_console()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(verb, total=total)

        def progress(item: Any, result: Any) -> None:
            if result is None:
                bar.update(task, description=f"{verb} {label(item)}")
            else:
                bar.advance(task)

        yield progress
