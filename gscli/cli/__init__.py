"""The ``gscli`` command line: a thin layer that parses, calls one library function, and prints.

Library errors (:class:`gscli.errors.GscliError`) become one ``Error: ...`` line on stderr with exit
status 2 (usage: bad spec, rate or subgroup) or 1 (failures: checks, files, store).
"""

from __future__ import annotations

import click

from gscli import __version__
from gscli.errors import GscliError


class _Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GscliError as exc:
            raise _Failure(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise _Failure("interrupted; no partial file was written", 1) from None


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
    """


from gscli.cli import build as _build  # noqa: E402,F401  (registers commands)
from gscli.cli import subgroups as _subgroups  # noqa: E402,F401
from gscli.cli import inspect as _inspect  # noqa: E402,F401
from gscli.cli import eval as _eval  # noqa: E402,F401
from gscli.cli import model as _model  # noqa: E402,F401

__all__ = ["main"]
