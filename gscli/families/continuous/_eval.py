"""``gscli eval`` for continuous-group files: every guarantee re-measured from the file's arrays.

The stored checks are not trusted. The checks of :func:`gscli.families.continuous._checks.check_continuous`
need numpy only and always run. With escnn installed, two more compare the file with what escnn says
about the same spec: the sampling matrix against ``FourierPointwise``'s own (``sampling_matches_escnn``)
and the stored irrep images, element matrices and table of H against escnn's
(``subgroup_matches_escnn``; the equivariance checks use those images, so a file whose images were
replaced consistently would otherwise pass them). Without escnn they are skipped, and
:func:`escnn_note` says so.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from gscli.checks import Check, maxabs, worst
from gscli.families.continuous._build import ContinuousOperator
from gscli.families.continuous._solver import NO_ANTIALIAS
from gscli.families.continuous._summary import mode_text
from gscli.fileformat import OperatorData

__all__ = ["check_file", "escnn_available", "escnn_note", "mode_note", "ESCNN_CHECKS"]

#: The checks that need escnn (skipped, with a note, without it).
ESCNN_CHECKS = ("sampling_matches_escnn", "subgroup_matches_escnn")


def escnn_available() -> bool:
    """Whether escnn can be imported (without importing it)."""
    return importlib.util.find_spec("escnn") is not None


def _escnn_checks(op: ContinuousOperator) -> tuple[np.ndarray, Check]:
    """escnn's sampling matrix for ``op.spec`` (for ``sampling_matches_escnn``) and the comparison of H's data."""
    from gscli import _escnn_continuous as _escnn

    smp = _escnn.sampling(op.spec)
    _, _, _, images = _escnn.subgroup(op.spec)
    reference = _escnn.fourier_pointwise_matrix(op.spec.group, images)
    flat = np.concatenate([img.reshape(img.shape[0], -1) for img in smp.irrep_images], axis=1)
    a = op.arrays
    same_shape = flat.shape == a["irrep_images"].shape and smp.element_matrices.shape == a["element_matrices"].shape
    err = float("nan")
    if same_shape:
        table = float(np.count_nonzero(smp.subgroup_cayley != a["subgroup_cayley"]))
        err = worst(maxabs(flat - a["irrep_images"]), maxabs(smp.element_matrices - a["element_matrices"]), table)
    check = Check("subgroup_matches_escnn", err, 1e-12,
                  "max |stored - escnn| over H's irrep images and element matrices; differing entries of H's table")
    return reference, check


def check_file(data: OperatorData) -> tuple[list[Check], list[str]]:
    """Every guarantee of a continuous-group file, re-measured; ``(checks, notes)``."""
    op = ContinuousOperator.from_data(data)
    if not escnn_available():
        return op.recheck(), [escnn_note()]
    reference, subgroup_check = _escnn_checks(op)
    return op.recheck(reference) + [subgroup_check], []


def escnn_note() -> str:
    """Why the escnn checks did not run ("" when escnn is installed)."""
    if escnn_available():
        return ""
    return (f"skipped {' and '.join(ESCNN_CHECKS)}: escnn is not installed (pip install 'gscli[build]'); "
            "the other checks need numpy only")


def mode_note(data: OperatorData) -> str:
    """The operator's mode in words ("" when it anti-aliases)."""
    if data.attrs.get("mode") == NO_ANTIALIAS:
        spec = data.spec
        return mode_text(NO_ANTIALIAS, spec.subgroup_order, spec.group.dimension)
    return ""
