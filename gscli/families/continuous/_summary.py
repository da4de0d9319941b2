"""What a continuous-group file holds, as one plain dictionary (numpy only; ``gscli inspect``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from gscli.errors import FormatError
from gscli.fileformat import OperatorData
from gscli.specs import ContinuousOperatorSpec

__all__ = ["summarize_continuous", "mode_text", "NO_ANTIALIAS_TEXT"]

#: How ``inspect`` says that H has at least as many elements as there are coefficients.
NO_ANTIALIAS_TEXT = "no anti-aliasing needed (|H| >= dim)"


def mode_text(mode: str, order: int, dimension: int) -> str:
    """The operator's mode in words."""
    if mode == "no-antialias":
        return f"{NO_ANTIALIAS_TEXT}: P = I, D = S, U = S^+ (least squares), U S = I"
    return f"anti-aliasing: V keeps {order} of {dimension} directions; D = S P, U = B (S B)^-1, S U = I"


def summarize_continuous(data: OperatorData) -> dict[str, Any]:
    """Summary of a verified continuous-group file as a JSON-serialisable dict.

    Keys: ``file``, ``kind`` (``"continuous"``), ``operator``, ``group`` (``SO3_L3``), ``group_name``
    (``SO(3)``), ``L``, ``dimension``, ``subgroup``, ``subgroup_order``, ``escnn_subgroup_id`` (as
    stored, JSON), ``rate`` (``dim/|H|``), ``mode`` and ``mode_text``, ``bands`` (irrep, Casimir,
    dimension, copies, kept; by ascending Casimir), ``kept``, ``elements`` (escnn's names of H's
    elements, in escnn's order), ``conditioning``, ``provenance``, ``checksum`` and ``stored_checks``
    (what the build measured; ``gscli eval`` re-measures).
    """
    if data.kind != "continuous":
        raise FormatError(f"{data.path or 'operator'}: holds a {data.kind} operator, not a continuous-group operator")
    spec = data.spec
    assert isinstance(spec, ContinuousOperatorSpec)
    a, attrs = data.arrays, data.attrs
    m, dim = spec.subgroup_order, spec.group.dimension
    bands = [{"irrep": json.loads(i), "casimir": float(c), "dimension": int(d), "copies": int(k), "kept": int(kept)}
             for i, c, d, k, kept in zip(a["bands/irrep"], a["bands/casimir"], a["bands/dimension"], a["bands/copies"],
                                         a["bands/kept"])]
    sigma = np.linalg.svd(a["sampling"] @ a["basis"], compute_uv=False)
    stored = data.checks
    keys = ("format", "format_version", "solver", "solver_rank_tol", "sampling_convention", "gscli_version",
            "escnn_version", "numpy_version", "h5py_version")
    return {
        "file": str(data.path) if data.path is not None else None,
        "kind": "continuous",
        "operator": str(spec),
        "group": str(spec.group),
        "group_name": spec.group.name,
        "L": spec.group.L,
        "dimension": dim,
        "subgroup": str(spec.subgroup),
        "subgroup_order": m,
        "escnn_subgroup_id": json.loads(attrs["escnn_subgroup_id"]),
        "rate": spec.rate,
        "mode": attrs["mode"],
        "mode_text": mode_text(attrs["mode"], m, dim),
        "bands": bands,
        "kept": sum(b["kept"] for b in bands),
        "elements": [str(e) for e in a["element_names"]],
        "conditioning": {
            "upsample_norm": float(np.linalg.norm(a["upsample"], 2)),
            "sampling_sigma_min_on_V": float(sigma.min()) if sigma.size else float("nan"),
            "sampling_sigma_max_on_V": float(sigma.max()) if sigma.size else float("nan"),
        },
        "provenance": {k: attrs[k] for k in keys if k in attrs},
        "checksum": {"stored": attrs["checksum"], "status": "verified" if data.verified else "unverified"},
        "stored_checks": {
            "count": len(stored),
            "passed": sum(1 for c in stored if c.get("passed")),
            "failed": [c.get("name") for c in stored if not c.get("passed")],
            "checks": stored,
        },
    }
