"""What a grid-operator file holds, as one plain dictionary (numpy and h5py only; ``gscli inspect``)."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

import numpy as np

from gscli.errors import FormatError
from gscli.fileformat import OperatorData, read_operator
from gscli.scale._resample import band_limit
from gscli.specs import GridOperatorSpec

__all__ = ["summarize_grid", "read_grid"]


def read_grid(source: str | os.PathLike | OperatorData) -> OperatorData:
    """A verified grid-operator file (a damaged one raises :class:`FormatError`)."""
    data = source if isinstance(source, OperatorData) else read_operator(source)
    if data.kind != "grid":
        where = str(data.path) if data.path is not None else "operator"
        raise FormatError(f"{where}: holds a {data.kind} operator ({data.spec}), not a grid operator")
    return data


def _axis_summary(n: int, m: int, d: np.ndarray, u: np.ndarray, frequencies: np.ndarray) -> dict[str, Any]:
    sigma_d = np.linalg.svd(d, compute_uv=False)
    sigma_u = np.linalg.svd(u, compute_uv=False)
    rank = int(np.count_nonzero(sigma_d > 1e-10 * max(sigma_d.max(initial=0.0), 1e-300)))
    ratio = Fraction(n, m)
    return {
        "fine": n,
        "coarse": m,
        "ratio": str(ratio),
        "divides": n % m == 0,
        "band_limit": band_limit(m),
        "kept_frequencies": [int(k) for k in frequencies],
        "kept": len(frequencies),
        "dropped_nyquist": m % 2 == 0,
        "conditioning": {
            "downsample_norm": float(sigma_d.max(initial=0.0)),
            "upsample_norm": float(sigma_u.max(initial=0.0)),
            "rank": rank,
            "downsample_sigma_min_on_band": float(sigma_d[:rank].min()) if rank else float("nan"),
            "band_condition": float(sigma_d[0] / sigma_d[rank - 1]) if rank else float("nan"),
        },
    }


def summarize_grid(source: str | os.PathLike | OperatorData) -> dict[str, Any]:
    """Summary of a grid-operator file as a JSON-serialisable dict (the file is verified first).

    Keys: ``file``, ``kind`` (``"grid"``), ``operator``, ``dims``, ``fine``, ``coarse`` (sizes per
    axis), ``rate``, ``axes`` (per axis: sizes, ratio, whether M divides N, band limit h, the kept
    frequencies, whether the Nyquist bin is dropped, and the conditioning: ||D||_2 = sqrt(M/N),
    ||U||_2 = sqrt(N/M), rank 2h+1, condition on the band 1), ``provenance``, ``checksum`` and
    ``stored_checks`` (what the build measured; ``gscli eval`` re-measures).
    """
    data = read_grid(source)
    spec = data.spec
    assert isinstance(spec, GridOperatorSpec)
    a, attrs = data.arrays, data.attrs
    axes = [_axis_summary(n, m, a[f"axis{i}/downsample"], a[f"axis{i}/upsample"], a[f"axis{i}/frequencies"])
            for i, (n, m) in enumerate(spec.axes)]
    stored = data.checks
    keys = ("format", "format_version", "construction", "gscli_version", "numpy_version", "h5py_version")
    return {
        "file": str(data.path) if data.path is not None else None,
        "kind": "grid",
        "operator": str(spec),
        "dims": spec.dims,
        "fine": list(spec.fine.shape),
        "coarse": list(spec.coarse.shape),
        "rate": spec.rate,
        "axes": axes,
        "provenance": {k: attrs[k] for k in keys if k in attrs},
        "checksum": {"stored": attrs["checksum"], "status": "verified" if data.verified else "unverified"},
        "stored_checks": {
            "count": len(stored),
            "passed": sum(1 for c in stored if c.get("passed")),
            "failed": [c.get("name") for c in stored if not c.get("passed")],
            "checks": stored,
        },
    }
