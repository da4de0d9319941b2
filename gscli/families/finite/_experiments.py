"""What anti-aliasing buys on signals, for operators on finite groups (``gscli eval``'s signal part).

Plain subsampling ``S f`` against the operator ``D f = S P f`` on signals on G. For C_N and D_N the
signals are feature maps of real images (matplotlib's bundled sample images) lifted to G by a
seeded random G-equivariant escnn convolution and a ReLU; for every group also white noise, and for
the point groups smooth functions f(g) = p(R_g u) (p a random cubic polynomial on R^3, R_g the 3x3
matrix of g). Measured: the reconstruction error on the discarded elements G \\ H (plain: U S f,
operator: U D f), the aliasing energy (the part of the output that is not the sampled bandlimited
part S P f), and the equivariance error under the joint spatial + fiber action of every h in H that
acts exactly on the pixel grid (rotations by multiples of 90 degrees, flips on axes at multiples of
45 degrees). The guarantees themselves are re-derived in :mod:`gscli.families.finite._checks`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gscli.checks import Check, worst
from gscli.errors import DependencyError
from gscli.families._images import SignalResult, sample_images
from gscli.families.finite._checks import _check, _relmax
from gscli.fileformat import OperatorData
from gscli.groups import inverse_table, is_signed_permutation, sampling_matrix

__all__ = ["signal_experiments", "grid_transform"]

_LIFT_CHANNELS = 4
_LIFT_KERNEL = 5


#: An output energy at or below this multiple of the input's (per element) is zero up to rounding: its
#: aliasing share is undefined (``None``), not rounding divided by rounding.
UNDEFINED_BELOW = 1e-20


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

    total = float(np.sum(x**2))

    def alias(y: np.ndarray) -> float | None:  # per output sample: its energy is rescaled to G's n elements
        energy = float(np.sum(y**2))
        if energy * n / max(len(nodes), 1) <= UNDEFINED_BELOW * total:
            return None
        return float(np.sum((y - clean) ** 2) / energy)
    return SignalResult(
        signal=name,
        count=int(x.shape[1]),
        out_of_band=float(np.sum((x - px) ** 2) / total) if total > 0 else 0.0,
        reconstruction_plain=recon(plain),
        reconstruction_operator=recon(op),
        aliasing_plain=alias(plain),
        aliasing_operator=alias(op),
    )


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
