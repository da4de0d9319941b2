"""Re-derive every guarantee of a finite-group operator file from its arrays alone (``gscli eval``'s checks).

:func:`check_file`: every guarantee of an operator, recomputed from the stored arrays with
:func:`gscli.checks.check_operator` (projector, reconstruction, H-equivariance for every h,
character, Laplacian grading, FFT for cyclic groups), plus the consistency of what the file says
about itself (group tables, basis, band table, aliasing cost) and the float32 checks through the
runtime layer (:class:`gscli.nn.GroupDownsample`). No stored flag is trusted. Pure numpy and torch.
What anti-aliasing buys on signals is measured apart, in :mod:`gscli.families.finite._experiments`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gscli.checks import Check, check_operator, maxabs, measured, worst
from gscli.errors import GscliError
from gscli.fileformat import OperatorData
from gscli.groups import (
    FiniteGroup,
    closure,
    cyclic_table,
    dihedral_table,
)
from gscli.solver import CayleyLaplacian, group_bands

__all__ = [
    "EVAL_TOLERANCES",
    "runtime_operators",
    "check_file",
]

#: Tolerances of the checks ``eval`` adds to :data:`gscli.checks.TOLERANCES`. Errors are the largest
#: absolute entry of a difference, or (``float32_*``, ``lift_equivariance``, ``features_equivariance``)
#: that divided by the largest absolute entry of the reference.
EVAL_TOLERANCES = {
    "group_table": 0.0,
    "subgroup_table": 0.0,
    "basis_orthonormal": 1e-12,
    "basis_spans_antialias": 1e-12,
    "band_table": 1e-8,
    "aliasing_cost": 1e-8,
    "float32_downsample": 1e-5,
    "float32_upsample": 1e-5,
    "float32_downsample_equivariance": 1e-5,
    "float32_upsample_equivariance": 1e-5,
    "lift_equivariance": 1e-5,
    "features_equivariance": 1e-10,
}



def _check(name: str, error: float, detail: str = "") -> Check:
    return measured(name, error, detail, EVAL_TOLERANCES)


def _relmax(a: np.ndarray, reference: np.ndarray) -> float:
    scale = maxabs(reference)
    return maxabs(a) / scale if scale > 0 else maxabs(a)


# --------------------------------------------------------------------------------------------------
# The runtime path.


def runtime_operators(data: OperatorData) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The runtime layer's downsampling and upsampling for a file: ``GroupDownsample`` and its ``upsample``.

    Each maps (batch, C * n_in, *spatial) to (batch, C * n_out, *spatial) in the input's dtype. The
    float32 checks go through the layer users put in their models, nothing else.
    """
    from gscli.nn import GroupDownsample

    layer = GroupDownsample.from_operator(data)
    return layer, layer.upsample


# --------------------------------------------------------------------------------------------------
# Checks from the stored arrays.


def _group(data: OperatorData) -> FiniteGroup:
    a = data.arrays
    return FiniteGroup(
        str(data.attrs["group"]),
        np.asarray(a["group_cayley"], dtype=np.int64),
        int(data.attrs["group_identity"]),
        tuple(int(g) for g in a["group_generators"]),
        tuple(str(s) for s in a["group_element_names"]),
        a.get("group_matrices"),
    )


def _closed_form_table(name: str) -> np.ndarray | None:
    """escnn's table for C<k> / D<k> (the only types whose element order is fixed without escnn)."""
    if len(name) > 1 and name[0] in "CD" and name[1:].isdigit():
        k = int(name[1:])
        return cyclic_table(k) if name[0] == "C" else dihedral_table(k)
    return None


def _table_checks(data: OperatorData, group: FiniteGroup) -> list[Check]:
    a = data.arrays
    n = group.order
    cg = group.cayley
    spec = data.spec
    # G's table: the closed form for C_N / D_N; for point groups, it must multiply the stored matrices.
    expected = _closed_form_table(str(spec.group))
    if expected is not None:
        bad = int(np.count_nonzero(cg != expected))
        detail = f"entries differing from escnn's {spec.group} table"
    elif "group_matrices" in a:
        mats = np.asarray(a["group_matrices"], dtype=np.float64)
        products = np.einsum("aij,bjk->abik", mats, mats)
        bad = int(np.count_nonzero(np.abs(products - mats[cg]).max(axis=(2, 3)) > 1e-9))
        detail = "products g_a g_b whose 3x3 matrix is not that of cayley[a, b]"
    else:
        bad, detail = n * n, f"no closed form and no matrices to check the {spec.group} table against"
    missing = n - len(closure(cg, group.generators, group.identity))
    bad += missing
    if missing:
        detail += f"; the generators reach only {n - missing} of {n} elements"
    if cg[group.identity].tolist() != list(range(n)):
        bad += 1
        detail += "; group_identity is not the identity"
    checks = [_check("group_table", bad, detail)]
    h_expected = _closed_form_table(str(spec.subgroup))
    if h_expected is not None:
        ch = np.asarray(a["subgroup_cayley"], dtype=np.int64)
        bad = int(np.count_nonzero(ch != h_expected)) if ch.shape == h_expected.shape else ch.size
        nodes = np.asarray(a["subgroup_nodes"], dtype=np.int64)
        bad += len(nodes) - len(set(nodes.tolist()))
        checks.append(_check("subgroup_table", bad,
                             f"entries differing from escnn's {spec.subgroup} table, plus repeated nodes"))
    return checks


def _basis_checks(data: OperatorData) -> list[Check]:
    b = np.asarray(data.arrays["basis"], dtype=np.float64)
    p = np.asarray(data.arrays["antialias"], dtype=np.float64)
    return [
        _check("basis_orthonormal", maxabs(b.T @ b - np.eye(b.shape[1]))),
        _check("basis_spans_antialias", maxabs(b @ b.T - p), "P = B B^T"),
    ]


def _band_checks(data: OperatorData, group: FiniteGroup, lap: Any) -> list[Check]:
    stored = data.arrays["bands"]
    p = np.asarray(data.arrays["antialias"], dtype=np.float64)
    bands = group_bands(group)  # closed form for C_N / D_N (the table was compared with it), else eigh
    if len(bands) != len(stored) or any(b.dimension != int(s["dimension"]) for b, s in zip(bands, stored)):
        dims = [b.dimension for b in bands]
        return [_check("band_table", float("inf"), f"stored dimensions {stored['dimension'].tolist()}, recomputed {dims}")]
    q = np.concatenate([band.vectors() for band in bands], axis=1)  # (n, n): every band's basis, in order
    inside = np.add.reduceat(np.sum(q * (p @ q), axis=0), np.cumsum([0] + [b.dimension for b in bands])[:-1])
    error = 0.0  # inside[E] = tr(Q_E^T P Q_E): the dimension of V inside band E, when P commutes with L
    for band, s, kept in zip(bands, stored, inside):
        error = worst(error, abs(band.eigenvalue - float(s["eigenvalue"])), abs(float(kept) - int(s["kept"])))
    checks = [_check("band_table", error, "stored (frequency, dimension, kept) vs the Laplacian and tr(Q_E^T P Q_E)")]
    if "aliasing_cost" in data.attrs:
        cost = float(np.trace(lap @ p))
        stored_cost = float(data.attrs["aliasing_cost"])
        checks.append(_check("aliasing_cost", abs(cost - stored_cost) / max(1.0, abs(cost)),
                             f"stored {stored_cost:.6g}, tr(P L) = {cost:.6g} (relative)"))
    return checks


def _float32_checks(data: OperatorData, seed: int) -> list[Check]:
    import torch

    a = data.arrays
    d = np.asarray(a["downsample"], dtype=np.float64)
    u = np.asarray(a["upsample"], dtype=np.float64)
    nodes = np.asarray(a["subgroup_nodes"], dtype=np.int64)
    cg = np.asarray(a["group_cayley"], dtype=np.int64)
    ch = np.asarray(a["subgroup_cayley"], dtype=np.int64)
    m, n = d.shape
    rng = np.random.default_rng(seed)
    # 2 x 3 fields x 5 positions; a single field at one position when the loop over H (2 |H| products
    # of |H| x |G| by the input) would otherwise take minutes (|H|^2 |G| above 2^30: |G| >= 1024 or so)
    batch, channels, spatial = (2, 3, (5,)) if m * m * n <= 2**30 else (1, 1, (1,))
    x64 = rng.standard_normal((batch, channels * n, *spatial)).astype(np.float32).astype(np.float64)
    z64 = rng.standard_normal((batch, channels * m, *spatial)).astype(np.float32).astype(np.float64)
    x32, z32 = torch.from_numpy(x64).float(), torch.from_numpy(z64).float()

    def exact(matrix: np.ndarray, v: np.ndarray) -> np.ndarray:
        k = matrix.shape[1]
        return np.einsum("oi,bcis->bcos", matrix, v.reshape(batch, channels, k, -1)).reshape(batch, -1, *spatial)

    try:
        down, up = runtime_operators(data)
    except GscliError as exc:  # the layer refuses what it cannot apply: that is a failed check
        return [Check("float32_runtime_layer", float("inf"), 0.0, f"the runtime layer refused the file: {exc}")]
    y32 = down(x32)
    w32 = up(z32)
    checks = [
        _check("float32_downsample", _relmax(y32.double().numpy() - exact(d, x64), exact(d, x64)),
               f"runtime float32 vs float64 on ({batch}, {channels}*{n}, {spatial[0]}) inputs, relative"),
        _check("float32_upsample", _relmax(w32.double().numpy() - exact(u, z64), exact(u, z64)),
               f"runtime float32 vs float64 on ({batch}, {channels}*{m}, {spatial[0]}) inputs, relative"),
    ]

    def act(v: torch.Tensor, table_row: np.ndarray, k: int) -> torch.Tensor:
        """lambda(g) on the group axis: value at x moves to g x."""
        grouped = v.reshape(batch, channels, k, -1)
        out = torch.zeros_like(grouped)
        out[:, :, torch.from_numpy(table_row)] = grouped
        return out.reshape(v.shape)

    down_err = up_err = 0.0
    for h in range(m):
        g = int(nodes[h])
        lhs = down(act(x32, cg[g], n))
        rhs = act(y32, ch[h], m)
        down_err = worst(down_err, _relmax((lhs - rhs).double().numpy(), rhs.double().numpy()))
        lhs = up(act(z32, ch[h], m))
        rhs = act(w32, cg[g], n)
        up_err = worst(up_err, _relmax((lhs - rhs).double().numpy(), rhs.double().numpy()))
    detail = f"runtime float32, max over all {m} elements h of H, relative"
    checks.append(_check("float32_downsample_equivariance", down_err, detail))
    checks.append(_check("float32_upsample_equivariance", up_err, detail))
    return checks


def check_file(data: OperatorData, seed: int = 0) -> list[Check]:
    """Every guarantee of an operator, recomputed from its arrays (stored flags are not read).

    Parameters
    ----------
    data : OperatorData
        A file read with :func:`gscli.fileformat.read_operator`.
    seed : int
        Seed of the random inputs of the float32 checks.

    Returns
    -------
    list of Check
        :func:`gscli.checks.check_operator`'s checks (with the Laplacian of the stored generators,
        and the FFT reference for C_N built with escnn's generator r), then ``group_table``, ``subgroup_table`` (C_k and D_k
        subgroups), ``basis_orthonormal``, ``basis_spans_antialias``, ``band_table``,
        ``aliasing_cost`` and the four ``float32_*`` checks.
    """
    a = data.arrays
    group = _group(data)
    table_checks = _table_checks(data, group)
    lap = CayleyLaplacian(group)  # numpy alone: eval's checks need no scipy
    checks = check_operator(
        a["antialias"], a["downsample"], a["upsample"], a["subgroup_nodes"], a["group_cayley"], a["subgroup_cayley"],
        laplacian=lap,
        cyclic=data.spec.group.family == "C" and data.attrs.get("cayley_generators", "escnn") == "escnn",
    )
    checks += table_checks
    checks += _basis_checks(data)
    checks += _band_checks(data, group, lap)
    checks += _float32_checks(data, seed)
    return checks


