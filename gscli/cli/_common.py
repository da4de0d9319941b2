"""Shared pieces of the command line: options, consoles, JSON output."""

from __future__ import annotations

import contextlib
import json
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


_JSON_PRINTED = "gscli.json_printed"


def print_json(document: Any) -> None:
    """Print the command's one JSON document on stdout (and remember that it was printed)."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
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
