"""What a finite-group operator file holds, as one plain dictionary (numpy and h5py only; ``gscli inspect``).

:func:`summarize` reads a file and returns its group, subgroup and rate, the order of H's elements
inside G with readable names, the band table, the conditioning of the reconstruction, the
provenance and whether the file was verified. Everything in the result is JSON-serialisable. It
shows what the file says; ``gscli eval`` (:mod:`gscli.evaluate`) re-checks it. Files are read only
through :func:`~gscli.fileformat.read_operator`: a damaged file is refused before the HDF5 library
sees any of its bytes, never shown.

Conditioning: with B an orthonormal basis of the bandlimited space V and S the sampling on H,
U = B (S B)^{-1}, so ||U||_2 = 1 / sigma_min(S B). A small sigma_min means that a little noise on
the samples is amplified by up to ||U||_2 on reconstruction.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gscli.fileformat import OperatorData, array_checksum, read_operator
from gscli.groups import FiniteGroup, cyclic_table, dihedral_table, planar_element_name
from gscli.solver import group_bands

__all__ = ["summarize", "subgroup_element_names", "conditioning", "band_table", "band_transfer", "fourier_response"]


def subgroup_element_names(cayley: np.ndarray) -> list[str] | None:
    """H's own names of its elements when its table is escnn's C_k or D_k table, else ``None``.

    Parameters
    ----------
    cayley : ndarray of int, shape (m, m)
        H's Cayley table in H's element order.

    Returns
    -------
    list of str or None
        ``["e", "r", "r^2", ...]`` for C_m; ``[..., "s", "r s", ...]`` for D_{m/2}.

    >>> subgroup_element_names(cyclic_table(3))
    ['e', 'r', 'r^2']
    >>> subgroup_element_names(dihedral_table(2))
    ['e', 'r', 's', 'r s']
    """
    m = cayley.shape[0]
    if np.array_equal(cayley, cyclic_table(m)):
        return [planar_element_name(i, m) for i in range(m)]
    if m % 2 == 0 and np.array_equal(cayley, dihedral_table(m // 2)):
        return [planar_element_name(i, m // 2) for i in range(m)]
    return None


def conditioning(upsample: np.ndarray, basis: np.ndarray, nodes: np.ndarray) -> dict[str, float]:
    """Conditioning of the reconstruction.

    Parameters
    ----------
    upsample : ndarray, shape (n, m)
        U.
    basis : ndarray, shape (n, m)
        B, an orthonormal basis of V.
    nodes : ndarray of int, shape (m,)
        H's elements as indices into G.

    Returns
    -------
    dict
        ``upsample_norm`` ||U||_2, ``sampling_sigma_min`` and ``sampling_sigma_max`` (extreme singular
        values of S restricted to V, i.e. of S B), and ``sampling_condition`` = their ratio.
    """
    sb = np.asarray(basis, dtype=np.float64)[np.asarray(nodes, dtype=np.int64), :]
    sigma = np.linalg.svd(sb, compute_uv=False)
    u_norm = float(np.linalg.norm(np.asarray(upsample, dtype=np.float64), 2))
    smin = float(sigma.min()) if sigma.size else float("nan")
    smax = float(sigma.max()) if sigma.size else float("nan")
    return {
        "upsample_norm": u_norm,
        "sampling_sigma_min": smin,
        "sampling_sigma_max": smax,
        "sampling_condition": smax / smin if smin > 0 else float("inf"),
    }


def band_table(bands: np.ndarray) -> list[dict[str, Any]]:
    """The stored band table as rows ``{frequency, dimension, kept, kept_fraction}``, ascending frequency."""
    rows = []
    for b in bands:
        dim, kept = int(b["dimension"]), int(b["kept"])
        freq = float(b["eigenvalue"])
        rows.append({
            "frequency": 0.0 if abs(freq) < 1e-12 else freq,
            "dimension": dim,
            "kept": kept,
            "kept_fraction": kept / dim if dim else float("nan"),
        })
    return rows


def band_transfer(data: OperatorData) -> dict[str, np.ndarray]:
    """Where the energy of each Laplacian band goes through downsampling and reconstruction.

    For a white signal in band E (orthonormal basis Q_E), ``T[E', E] = ||Q_E'^T R Q_E||_F^2 / dim E``
    is the share of its energy that the round trip R puts into band E'. With the operator,
    R = U D = U S P = P: band E keeps its kept fraction and nothing moves (T is diagonal). With
    plain subsampling, R = U S: energy above the kept bands folds into them (aliasing).

    Returns
    -------
    dict
        ``frequencies`` (k,), ``dimensions`` (k,), ``plain`` (k, k) and ``operator`` (k, k), float64;
        bands recomputed from the stored Cayley table and generators.
    """
    a = data.arrays
    group = FiniteGroup(
        str(data.attrs["group"]), np.asarray(a["group_cayley"], dtype=np.int64), int(data.attrs["group_identity"]),
        tuple(int(g) for g in a["group_generators"]), tuple(str(s) for s in a["group_element_names"]),
    )
    bands = [(space.eigenvalue, space.vectors()) for space in group_bands(group)]
    u = np.asarray(a["upsample"], dtype=np.float64)
    d = np.asarray(a["downsample"], dtype=np.float64)
    nodes = np.asarray(a["subgroup_nodes"], dtype=np.int64)
    q_all = np.concatenate([q for _, q in bands], axis=1)  # orthonormal eigenbasis, band by band
    edges = np.cumsum([0] + [q.shape[1] for _, q in bands])
    dims = np.diff(edges)

    plain = np.zeros((u.shape[0], u.shape[0]), dtype=np.float64)
    plain[:, nodes] = u  # U S

    def transfer(round_trip: np.ndarray) -> np.ndarray:
        energy = (q_all.T @ round_trip @ q_all) ** 2
        out = np.add.reduceat(np.add.reduceat(energy, edges[:-1], axis=0), edges[:-1], axis=1)
        return out / dims[None, :]

    return {
        "frequencies": np.array([e for e, _ in bands], dtype=np.float64),
        "dimensions": dims.astype(np.int64),
        "plain": transfer(plain),
        "operator": transfer(u @ d),
    }


def fourier_response(data: OperatorData) -> dict[str, np.ndarray]:
    """Energy gain of the anti-aliasing filter per Fourier frequency, for C_N (any group of order N works).

    ``gain[k] = ||P phi_k||^2`` for the unit Fourier mode phi_k(x) = exp(2 pi i k x / N) / sqrt(N),
    k = -N/2 .. N/2 (signed), and the ideal low-pass filter of cutoff M/2: gain 1 for |k| < M/2,
    0 above, and 1/2 at |k| = M/2 when M is even (the cosine is kept, the sine dropped).
    """
    p = np.asarray(data.arrays["antialias"], dtype=np.float64)
    n = p.shape[0]
    m = int(data.attrs["subgroup_order"])
    k = np.arange(-(n // 2), n - n // 2)
    x = np.arange(n)
    modes = np.exp(2j * np.pi * np.outer(x, k) / n) / np.sqrt(n)
    gain = np.sum(np.abs(p @ modes) ** 2, axis=0)
    ideal = np.where(np.abs(k) < m / 2, 1.0, 0.0)
    if m % 2 == 0:
        ideal[np.abs(k) == m // 2] = 0.5
    return {"frequency": k, "gain": gain, "ideal": ideal}


def _provenance(attrs: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "format", "format_version", "gscli_version", "escnn_version", "numpy_version", "h5py_version", "solver",
        "solver_band_tol", "solver_rank_tol", "selection", "subgroup_source", "escnn_subgroup_id",
        "escnn_gspace",
    )
    return {k: attrs[k] for k in keys if k in attrs}


def summarize(source: str | os.PathLike | OperatorData) -> dict[str, Any]:
    """Summary of an operator file as a JSON-serialisable dict.

    A path is read with :func:`~gscli.fileformat.read_operator`, which checks the whole-file digest
    before HDF5 parses anything and the dataset checksum after: a damaged file raises
    :class:`gscli.errors.FormatError`. ``checksum.status`` is ``"verified"`` only for data that
    :func:`read_operator` verified; for data built in memory (or read with ``verify=False``) it is
    ``"unverified"`` when the arrays match the stored dataset checksum and ``"mismatch"`` when not.

    Parameters
    ----------
    source : path or OperatorData
        An operator file, or one already read.

    Returns
    -------
    dict
        Keys ``file``, ``operator``, ``group``, ``subgroup``, ``rate``, ``group_order``,
        ``subgroup_order``, ``elements`` (one row per element of H, in H's order:
        ``{h, g, name, name_in_h}``), ``bands`` (see :func:`band_table`), ``aliasing_cost``
        (tr(P L) as stored), ``conditioning`` (see :func:`conditioning`), ``provenance``,
        ``checksum`` ``{stored, computed, status}`` and ``stored_checks`` (what the build measured:
        ``{count, passed, failed}``; ``gscli eval`` re-measures).
    """
    data = source if isinstance(source, OperatorData) else read_operator(source)
    a, attrs = data.arrays, data.attrs
    nodes = np.asarray(a["subgroup_nodes"], dtype=np.int64)
    g_names = [str(s) for s in a["group_element_names"]]
    h_names = subgroup_element_names(np.asarray(a["subgroup_cayley"]))
    elements = [
        {"h": i, "g": int(g), "name": g_names[g], "name_in_h": h_names[i] if h_names is not None else g_names[g]}
        for i, g in enumerate(nodes)
    ]
    computed = array_checksum(a)
    bands = band_table(a["bands"])
    transfer = band_transfer(data)
    if len(transfer["dimensions"]) == len(bands):
        for j, (row, col_plain, col_op) in enumerate(zip(bands, transfer["plain"].T, transfer["operator"].T)):
            row["folded_plain"] = float(col_plain.sum() - col_plain[j])
            row["folded_operator"] = float(col_op.sum() - col_op[j])
    stored_checks = data.checks
    return {
        "file": str(data.path) if data.path is not None else None,
        "operator": str(data.spec),
        "group": attrs["group"],
        "subgroup": attrs["subgroup"],
        "rate": int(attrs["rate"]),
        "group_order": int(attrs["group_order"]),
        "subgroup_order": int(attrs["subgroup_order"]),
        "group_identity": int(attrs["group_identity"]),
        "generators": [g_names[int(g)] for g in a["group_generators"]],
        "cayley_generators": str(attrs.get("cayley_generators", "escnn")),
        "elements": elements,
        "bands": bands,
        "aliasing_cost": float(attrs["aliasing_cost"]) if "aliasing_cost" in attrs else None,
        "conditioning": conditioning(a["upsample"], a["basis"], nodes),
        "provenance": _provenance(attrs),
        "checksum": {
            "stored": attrs["checksum"],
            "computed": computed,
            "status": "mismatch" if computed != attrs["checksum"] else "verified" if data.verified else "unverified",
        },
        "stored_checks": {
            "count": len(stored_checks),
            "passed": sum(1 for c in stored_checks if c.get("passed")),
            "failed": [c.get("name") for c in stored_checks if not c.get("passed")],
        },
    }
