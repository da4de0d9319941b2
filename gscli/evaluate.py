"""Re-check an operator file from its arrays alone, and measure what anti-aliasing buys (the library behind ``gscli eval``).

Two parts:

* :func:`check_file`: every guarantee of an operator, recomputed from the stored arrays with
  :func:`gscli.checks.check_operator` (projector, reconstruction, H-equivariance for every h,
  character, Laplacian grading, FFT for cyclic groups), plus the consistency of what the file
  says about itself (group tables, basis, band table, aliasing cost) and the float32 checks
  through the runtime layer (:class:`gscli.nn.GroupDownsample`). No stored flag is trusted. Pure numpy and torch.
* :func:`signal_experiments`: plain subsampling ``S f`` against the operator ``D f = S P f`` on
  signals on G. For C_N and D_N the signals are feature maps of real images (matplotlib's bundled
  sample images) lifted to G by a seeded random G-equivariant escnn convolution and a ReLU; for
  every group also white noise, and for the point groups smooth functions f(g) = p(R_g u) (p a
  random cubic polynomial on R^3, R_g the 3x3 matrix of g). Measured: the reconstruction error on
  the discarded elements G \\ H (plain: U S f, operator: U D f), the aliasing energy (the part of
  the output that is not the sampled bandlimited part S P f), and the equivariance error under the
  joint spatial + fiber action of every h in H that acts exactly on the pixel grid (rotations by
  multiples of 90 degrees, flips on axes at multiples of 45 degrees).

:func:`evaluate` does both for one file and returns an :class:`EvalReport`.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gscli._optional import need
from gscli.checks import Check, check_operator, failed, maxabs, measured, worst
from gscli.errors import DependencyError, FormatError, GscliError, StoreError
from gscli.fileformat import OperatorData, read_operator
from gscli.groups import (
    FiniteGroup,
    closure,
    cyclic_table,
    dihedral_table,
    inverse_table,
    is_signed_permutation,
    sampling_matrix,
)
from gscli.solver import CayleyLaplacian, group_bands
from gscli.store import check_store_folder, named_operator, resolve_store

__all__ = [
    "EVAL_TOLERANCES",
    "SignalResult",
    "EvalReport",
    "runtime_operators",
    "check_file",
    "signal_experiments",
    "sample_images",
    "grid_transform",
    "evaluate",
    "evaluate_store",
    "store_files",
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

_LIFT_CHANNELS = 4
_LIFT_KERNEL = 5
_IMAGE_SIZE = 48


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


# --------------------------------------------------------------------------------------------------
# Signals.


@dataclass(frozen=True)
class SignalResult:
    """Plain subsampling vs the operator on one kind of signal.

    ``reconstruction_*``: ||f - f_hat|| / ||f|| on the discarded elements G \\ H, f_hat = U S f
    (plain) or U D f (operator). ``aliasing_*``: ||y - S P f||^2 / ||y||^2 for the output y = S f
    (plain) or D f (operator): the share of the output's energy that is folded-in high frequency.
    ``equivariance_*``: max over the grid-exact h in H of ||y(h . x) - h . y(x)|| / ||y(x)|| under
    the joint spatial + fiber action (``None`` when no spatial action was measured).
    ``out_of_band``: ||(I - P) f||^2 / ||f||^2, how far the signals are from bandlimited.
    """

    signal: str
    count: int
    out_of_band: float
    reconstruction_plain: float
    reconstruction_operator: float
    aliasing_plain: float
    aliasing_operator: float
    equivariance_plain: float | None = None
    equivariance_operator: float | None = None
    transforms: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal, "count": self.count, "out_of_band": self.out_of_band,
            "reconstruction": {"plain": self.reconstruction_plain, "operator": self.reconstruction_operator},
            "aliasing": {"plain": self.aliasing_plain, "operator": self.aliasing_operator},
            "equivariance": {"plain": self.equivariance_plain, "operator": self.equivariance_operator,
                             "elements": list(self.transforms)},
        }


def _measure(name: str, x: np.ndarray, data: OperatorData) -> SignalResult:
    """Signals are the columns of ``x`` (n, count)."""
    a = data.arrays
    p = np.asarray(a["antialias"], dtype=np.float64)
    d = np.asarray(a["downsample"], dtype=np.float64)
    u = np.asarray(a["upsample"], dtype=np.float64)
    nodes = np.asarray(a["subgroup_nodes"], dtype=np.int64)
    n = p.shape[0]
    discarded = np.setdiff1d(np.arange(n), nodes)
    px = p @ x
    plain, op = x[nodes], d @ x
    clean = px[nodes]  # S P f: the alias-free samples

    def recon(y: np.ndarray) -> float:
        ref = np.linalg.norm(x[discarded])
        return float(np.linalg.norm((u @ y)[discarded] - x[discarded]) / ref) if ref > 0 else 0.0

    def alias(y: np.ndarray) -> float:
        energy = float(np.sum(y**2))
        return float(np.sum((y - clean) ** 2) / energy) if energy > 0 else 0.0

    total = float(np.sum(x**2))
    return SignalResult(
        signal=name,
        count=int(x.shape[1]),
        out_of_band=float(np.sum((x - px) ** 2) / total) if total > 0 else 0.0,
        reconstruction_plain=recon(plain),
        reconstruction_operator=recon(op),
        aliasing_plain=alias(plain),
        aliasing_operator=alias(op),
    )


def sample_images(size: int = _IMAGE_SIZE) -> tuple[np.ndarray, tuple[str, ...]]:
    """Real grayscale images that ship with matplotlib (no download), as (k, size, size) float64.

    Grace Hopper's portrait (``grace_hopper.jpg``), an MRI slice (``s1045.ima.gz``) and a terrain
    elevation map (``jacksboro_fault_dem.npz``), each block-averaged to about ``size`` pixels,
    center-cropped to ``size x size`` and normalised to zero mean and unit variance.

    Raises :class:`DependencyError` when matplotlib's sample data is missing.
    """
    cbook = need("matplotlib.cbook", "cli", "eval's real images")

    def load(name: str) -> np.ndarray:
        path = cbook.get_sample_data(name, asfileobj=False)
        if name.endswith(".jpg"):
            from matplotlib import image

            rgb = image.imread(path).astype(np.float64)
            return rgb[..., :3] @ np.array([0.299, 0.587, 0.114])
        if name.endswith(".ima.gz"):
            with gzip.open(path, "rb") as fh:
                return np.frombuffer(fh.read(), dtype="<u2").reshape(256, 256).astype(np.float64)
        with np.load(path) as archive:
            return np.asarray(archive["elevation"], dtype=np.float64)

    names = ("grace_hopper.jpg", "s1045.ima.gz", "jacksboro_fault_dem.npz")
    images = []
    for name in names:
        try:
            img = load(name)
        except (OSError, ValueError, KeyError) as exc:
            raise DependencyError(f"matplotlib's bundled sample image {name!r} cannot be read: {exc}") from None
        factor = max(1, min(img.shape) // size)
        h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
        img = img[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        img = img[top:top + size, left:left + size]
        images.append((img - img.mean()) / (img.std() or 1.0))
    return np.stack(images), names


def grid_transform(images: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Move an image by an exact grid transform: ``out(p) = in(M^{-1} p)``.

    Pixel (i, j) of a square (s, s) image sits at x = j - (s-1)/2 (columns, to the right) and
    y = (s-1)/2 - i (rows, upwards): escnn's convention for the plane.

    Parameters
    ----------
    images : ndarray, shape (..., s, s)
    matrix : ndarray, shape (2, 2)
        A signed permutation matrix (rotation by a multiple of 90 degrees, or a flip on an axis at
        a multiple of 45 degrees).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 2) or not is_signed_permutation(matrix):
        raise ValueError(f"not an exact grid transform (a signed 2x2 permutation matrix): {matrix.tolist()}")
    m = np.rint(matrix).astype(np.int64)
    s = images.shape[-1]
    if images.shape[-2] != s:
        raise ValueError(f"images must be square, got {images.shape[-2:]}")
    idx = np.arange(s)
    # doubled coordinates are integers for every s
    x2 = (2 * idx - (s - 1))[None, :].repeat(s, 0)  # (i, j) -> 2x
    y2 = ((s - 1) - 2 * idx)[:, None].repeat(s, 1)  # (i, j) -> 2y
    inv = m.T  # a signed permutation matrix is orthogonal
    sx = inv[0, 0] * x2 + inv[0, 1] * y2
    sy = inv[1, 0] * x2 + inv[1, 1] * y2
    j = (sx + (s - 1)) // 2
    i = ((s - 1) - sy) // 2
    return images[..., i, j]


def _symmetrize(filters: np.ndarray, cayley: np.ndarray, plane: np.ndarray, exact: list[int]) -> np.ndarray:
    """Average lifting filters over the grid-exact subgroup K of G, in float64.

    A lifting filter bank W (channel c * n + x) is equivariant exactly when W[c, g x] = T_g W[c, x];
    W' [c, y] = mean over k in K of T_k W[c, k^{-1} y] is the projection onto such filters.
    escnn samples its filter basis in float32, so its filters are equivariant only to about 1e-7;
    the projection moves them by that much and makes the K-equivariance exact in float64.
    """
    n = cayley.shape[0]
    inverse = inverse_table(cayley)
    grouped = filters.reshape(-1, n, *filters.shape[1:])
    out = np.zeros_like(grouped)
    for k in exact:
        out += grid_transform(grouped[:, cayley[inverse[k]]], plane[k])
    return (out / len(exact)).reshape(filters.shape)


def _lift(images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """ReLU(conv(images)) in float64: (k, s, s) -> (k, C * n, s, s)."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images[:, None]))
        w = torch.from_numpy(filters)
        y = torch.nn.functional.conv2d(x, w, padding=filters.shape[-1] // 2)
        return torch.relu(y).numpy()


def _act_g(features: np.ndarray, n: int, row: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """Joint action on features (k, C * n, s, s): spatial transform, then fiber value at x moves to g x."""
    k, cn = features.shape[:2]
    moved = grid_transform(features, plane).reshape(k, cn // n, n, *features.shape[2:])
    out = np.zeros_like(moved)
    out[:, :, row] = moved
    return out.reshape(features.shape)


def _apply_group_axis(matrix: np.ndarray, features: np.ndarray) -> np.ndarray:
    k, cn = features.shape[:2]
    n = matrix.shape[1]
    grouped = features.reshape(k, cn // n, n, *features.shape[2:])
    return np.einsum("oi,kci...->kco...", matrix, grouped).reshape(k, -1, *features.shape[2:])


def _image_experiment(data: OperatorData, seed: int) -> tuple[SignalResult, list[Check]]:
    from gscli import _escnn

    a = data.arrays
    spec = data.spec.group
    n = spec.order
    cg = np.asarray(a["group_cayley"], dtype=np.int64)
    ch = np.asarray(a["subgroup_cayley"], dtype=np.int64)
    nodes = np.asarray(a["subgroup_nodes"], dtype=np.int64)
    names = [str(s) for s in a["group_element_names"]]
    d = np.asarray(a["downsample"], dtype=np.float64)
    sampling = sampling_matrix(n, nodes)

    filters, plane = _escnn.planar_lift(spec, _LIFT_CHANNELS, _LIFT_KERNEL, seed)
    images, _ = sample_images()
    features = _lift(images, filters)

    exact_g = [g for g in range(n) if is_signed_permutation(plane[g])]
    lift_err = 0.0
    for g in exact_g:
        lhs = _lift(grid_transform(images, plane[g]), filters)
        rhs = _act_g(features, n, cg[g], plane[g])
        lift_err = worst(lift_err, _relmax(lhs - rhs, rhs))
    checks = [_check("lift_equivariance", lift_err,
                     f"escnn's float32-sampled lift vs the file's action of G on {len(exact_g)} grid-exact elements "
                     f"({', '.join(names[g] for g in exact_g)}), relative")]
    filters = _symmetrize(filters, cg, plane, exact_g)
    features = _lift(images, filters)

    signals = features.reshape(features.shape[0], -1, n, *features.shape[2:])
    result = _measure(f"image features ({len(images)} images, {_LIFT_CHANNELS} regular fields, ReLU)",
                      np.moveaxis(signals, 2, 0).reshape(n, -1), data)

    exact_h = [h for h in range(len(nodes)) if is_signed_permutation(plane[nodes[h]])]
    errors = {"plain": 0.0, "operator": 0.0}
    for h in exact_h:
        g = int(nodes[h])
        moved = _lift(grid_transform(images, plane[g]), filters)
        for label, matrix in (("plain", sampling), ("operator", d)):
            lhs = _apply_group_axis(matrix, moved)
            rhs = _act_g(_apply_group_axis(matrix, features), len(nodes), ch[h], plane[g])
            errors[label] = worst(errors[label], _relmax(lhs - rhs, rhs))
    result = replace(result, equivariance_plain=errors["plain"], equivariance_operator=errors["operator"],
                     transforms=tuple(names[nodes[h]] for h in exact_h))
    checks.append(_check("features_equivariance", errors["operator"],
                         f"lift + operator under the joint action of the {len(exact_h)} grid-exact elements of H, relative"))
    return result, checks


def _smooth_sphere_signals(matrices: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """f(g) = p(R_g u): p a random polynomial of degree <= 3 on R^3, u a random unit vector; (n, count)."""
    u = rng.standard_normal((count, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.einsum("gij,cj->gci", matrices, u)  # (n, count, 3)
    exponents = [(i, j, k) for i in range(4) for j in range(4) for k in range(4) if i + j + k <= 3]
    coeffs = rng.standard_normal((len(exponents), count))
    out = np.zeros(v.shape[:2])
    for (i, j, k), c in zip(exponents, coeffs):
        out += c * v[..., 0] ** i * v[..., 1] ** j * v[..., 2] ** k
    return out


def signal_experiments(
    data: OperatorData, seed: int = 0, images: bool = True
) -> tuple[list[SignalResult], list[Check], list[str]]:
    """Plain subsampling vs the operator on real and random signals (see the module docstring).

    Parameters
    ----------
    data : OperatorData
    seed : int
        Seeds the random signals and the lifting convolution's weights.
    images : bool
        Lift real images for C_N and D_N (needs escnn); otherwise only random signals.

    Returns
    -------
    results : list of SignalResult
    checks : list of Check
        ``lift_equivariance`` and ``features_equivariance`` when images were lifted.
    notes : list of str
        What was skipped and why.
    """
    rng = np.random.default_rng(seed)
    spec = data.spec.group
    n = spec.order
    results: list[SignalResult] = []
    checks: list[Check] = []
    notes: list[str] = []
    if spec.planar and images:
        try:
            result, image_checks = _image_experiment(data, seed)
            results.append(result)
            checks += image_checks
        except DependencyError as exc:
            notes.append(f"image features skipped: {exc}")
    elif spec.planar:
        notes.append("image features skipped (not requested)")
    else:
        notes.append(f"{spec} acts on 3D space: real 3D data and a 3D lifting convolution are too heavy for eval; "
                     "smooth functions on the sphere stand in for real signals")
    matrices = data.arrays.get("group_matrices")
    if matrices is not None:
        results.append(_measure("smooth: p(R_g u), p cubic", _smooth_sphere_signals(matrices, 512, rng), data))
    results.append(_measure("white noise", rng.standard_normal((n, 512)), data))
    return results, checks, notes


# --------------------------------------------------------------------------------------------------
# Reports.


@dataclass
class EvalReport:
    """What ``gscli eval`` found for one file."""

    path: Path
    operator: str | None
    checks: list[Check] = field(default_factory=list)
    signals: list[SignalResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: ``"group"`` or ``"grid"`` (a resolution change on image grids, :mod:`gscli.scale`).
    kind: str = "group"

    @property
    def passed(self) -> bool:
        return self.error is None and not failed(self.checks)

    @property
    def failures(self) -> list[str]:
        """One sentence per failed check (or the read error): name, measured error, tolerance."""
        if self.error is not None:
            return [self.error]
        return [f"check {c.name} failed: error {c.error:.3g} > tolerance {c.tolerance:.0e}"
                + (f" ({c.detail})" if c.detail else "") for c in failed(self.checks)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "operator": self.operator,
            "kind": self.kind,
            "passed": self.passed,
            "error": self.error,
            "checks": [c.as_dict() for c in self.checks],
            "signals": [s.as_dict() for s in self.signals],
            "notes": self.notes,
            "seconds": round(self.seconds, 4),
        }


def evaluate(path: str | os.PathLike, signals: bool = True, images: bool = True, seed: int = 0) -> EvalReport:
    """Re-check one operator file and, if ``signals``, measure plain vs anti-aliased downsampling.

    A file that cannot be read (missing, foreign, checksum mismatch) gives a failed report with
    ``error`` set, not an exception, so that a whole store can be evaluated. So does a file whose
    name is a store name (``D12-D6.h5``) but which holds another operator.
    """
    start = time.perf_counter()
    path = Path(path)
    try:
        data = read_operator(path, expect=named_operator(path))  # D12-D6.h5 must hold D12>D6, as in the store
    except FormatError as exc:
        return EvalReport(path, None, error=f"unreadable: {exc}", seconds=time.perf_counter() - start)
    if data.kind == "grid":  # a resolution change on image grids: gscli.scale owns its checks
        from gscli.scale._grid import evaluate_grid

        report = evaluate_grid(data, signals and images, seed)
        report.seconds = time.perf_counter() - start
        return report
    report = EvalReport(path, str(data.spec))
    report.checks = check_file(data, seed)
    if signals:
        report.signals, extra, report.notes = signal_experiments(data, seed, images)
        report.checks += extra
    report.seconds = time.perf_counter() - start
    return report


def store_files(store: str | os.PathLike | None = None) -> list[Path]:
    """Every operator file (``*.h5``, hidden files excluded) in the store folder, sorted by name."""
    folder = resolve_store(store)
    check_store_folder(folder)
    files = sorted(p for p in folder.glob("*.h5") if not p.name.startswith("."))
    if not files:
        raise StoreError(f"operator store {str(folder)!r} holds no .h5 files; build some with: gscli build --out {folder}")
    return files


def evaluate_store(
    paths: Iterable[str | os.PathLike],
    signals: bool = True,
    images: bool = True,
    seed: int = 0,
    progress: Callable[[Path, EvalReport | None], None] | None = None,
) -> list[EvalReport]:
    """:func:`evaluate` every file in ``paths`` (e.g. :func:`store_files`)."""
    reports = []
    for path in paths:
        path = Path(path)
        if progress is not None:
            progress(path, None)
        try:
            report = evaluate(path, signals, images, seed)
        except GscliError as exc:
            report = EvalReport(path, None, error=str(exc))
        reports.append(report)
        if progress is not None:
            progress(path, report)
    return reports
