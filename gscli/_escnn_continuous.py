"""Everything the continuous-group operators ask of escnn, in one place.

escnn defines the groups SO(2), O(2), SO(3), O(3), their irreps, the coefficient basis of
band-limited fields (``G.bl_regular_representation(L)``) and the finite subgroups with their element
order. This module calls escnn (imported quietly through :mod:`gscli._escnn`), converts what it
returns to float64 numpy arrays once, and caches them. Nothing else in the continuous family
(:mod:`gscli.families.continuous`) imports escnn; the runtime (:mod:`gscli.nn._continuous`) never does.

Sampling (DESIGN §9). A band-limited field is a coefficient vector c in the basis of
``bl_regular_representation(L)``: for each irrep psi of degree <= L (escnn's order) its copies
j = 0 .. c_psi - 1 of d_psi numbers each (c_psi = d_psi / (sum of squares of its constituents):
d_psi copies for real irreps, one for SO(2)'s complex ones). Its value at g is escnn's inverse
Fourier transform, the one ``FourierPointwise(..., normalize=False)`` samples with::

    f(g) = sum_psi sqrt(d_psi) sum_j sum_i rho_psi(g)[i, j] c[psi, j, i]

(``normalize=True``, escnn's default, divides every sample by sqrt(dim)). Then
f_{rho_L(h) c}(x) = f_c(h^{-1} x): the coefficients carry the left-regular action, so sampling on H
is H-equivariant, S rho_L(h) = lambda_H(h) S.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from gscli.specs import ContinuousGroupSpec, ContinuousOperatorSpec
from gscli.errors import SpecError

__all__ = ["Sampling", "escnn_group", "escnn_subgroup_id", "escnn_version", "sampling", "irrep_matrices", "casimir",
           "fourier_pointwise_matrix", "group_sampling_row", "random_elements"]


def _group_module() -> Any:
    from gscli._escnn import _escnn_group_module

    return _escnn_group_module()


@contextlib.contextmanager
def _quiet():
    from gscli._escnn import _quiet as quiet

    with quiet():
        yield


def escnn_group(spec: ContinuousGroupSpec) -> Any:
    """escnn's SO(2), O(2), SO(3) or O(3), with maximum frequency at least L (escnn keeps one instance)."""
    group = _group_module()
    make = {"SO2": group.so2_group, "O2": group.o2_group, "SO3": group.so3_group, "O3": group.o3_group}[spec.family]
    with _quiet():
        return make(max(spec.L, 1))


def escnn_subgroup_id(spec: ContinuousOperatorSpec) -> Any:
    """escnn's id of H in G (``G.subgroup(id)``): :attr:`gscli.specs.ContinuousOperatorSpec.escnn_subgroup_id`."""
    return spec.escnn_subgroup_id


def escnn_version() -> str:
    """The installed escnn's version, ``"not installed"`` without it."""
    from gscli._escnn import escnn_version as version

    return version()


def casimir(family: str, irrep_id: tuple) -> float:
    """The Casimir (Laplace-Beltrami eigenvalue) of an irrep: k^2 on SO(2)/O(2), l(l+1) on SO(3)/O(3)."""
    degree = int(irrep_id[-1])
    return float(degree * degree) if family in ("SO2", "O2") else float(degree * (degree + 1))


def _standard(family: str, element: Any) -> np.ndarray:
    """The element as a matrix of its standard action on R^2 (SO(2), O(2)) or R^3 (SO(3), O(3))."""
    group = element.group
    if family in ("SO2", "SO3"):
        irrep = group.irrep(1)
    elif family == "O2":
        irrep = group.irrep(1, 1)
    else:
        irrep = group.irrep(1, 1)  # O(3): the vector representation is odd under the inversion
    return np.asarray(irrep(element), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Sampling:
    """What escnn says about sampling the band-limited fields of G on H, as float64/int64 arrays.

    Attributes
    ----------
    irreps : tuple of tuple
        escnn's ids of the irreps of degree <= L, once each, in the order of ``bl_regular_representation(L)``.
    offsets, sizes, copies : tuple of int
        Where each irrep's block of coefficients starts, d_psi, and its number of copies.
    casimirs : tuple of float
        Casimir of each irrep.
    sampling : ndarray, shape (m, dim)
        S: row i evaluates the band-limited field at H's i-th element (escnn's order of H).
    irrep_images : tuple of ndarray
        Per irrep, shape (m, d_psi, d_psi): rho_psi(h_i) for H's elements (included in G).
    subgroup_cayley : ndarray of int, shape (m, m)
        [a, b] = index of h_a h_b, read from escnn's ``H.regular_representation``: lambda_H(h_a) e_b = e_{h_a h_b}.
    subgroup_identity : int
        Index of H's identity.
    element_matrices : ndarray, shape (m, k, k)
        Each h_i's image in G acting on R^2 (SO(2), O(2)) or R^3 (SO(3), O(3)).
    element_names : tuple of str
        escnn's names of H's elements.
    """

    spec: ContinuousOperatorSpec
    subgroup_id: Any
    irreps: tuple[tuple, ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    copies: tuple[int, ...]
    casimirs: tuple[float, ...]
    sampling: np.ndarray
    irrep_images: tuple[np.ndarray, ...]
    subgroup_cayley: np.ndarray
    subgroup_identity: int
    element_matrices: np.ndarray
    element_names: tuple[str, ...]

    @property
    def dimension(self) -> int:
        return int(self.sampling.shape[1])

    def representation(self, i: int) -> np.ndarray:
        """rho_L(h_i), (dim, dim): block diagonal, each irrep repeated over its copies."""
        dim = self.dimension
        out = np.zeros((dim, dim), dtype=np.float64)
        for off, d, c, images in zip(self.offsets, self.sizes, self.copies, self.irrep_images):
            for j in range(c):
                s = off + j * d
                out[s:s + d, s:s + d] = images[i]
        return out

    def regular(self, i: int) -> np.ndarray:
        """lambda_H(h_i), (m, m): the permutation e_b -> e_{h_i h_b}."""
        m = self.subgroup_cayley.shape[0]
        out = np.zeros((m, m), dtype=np.float64)
        out[self.subgroup_cayley[i], np.arange(m)] = 1.0
        return out


def irrep_matrices(group: Any, irreps: tuple[tuple, ...], elements: list) -> tuple[np.ndarray, ...]:
    """Per irrep id, the stack (len(elements), d, d) of rho_psi(g) for g in ``elements`` (float64)."""
    with _quiet():
        return tuple(np.stack([np.asarray(group.irrep(*psi)(g), dtype=np.float64) for g in elements])
                     for psi in irreps)


def _layout(group: Any, L: int) -> tuple[tuple[tuple, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """escnn's irreps of degree <= L in ``bl_regular_representation(L)``'s order, with offsets, sizes, copies.

    Checked against the representation itself: its irreps list is each irrep repeated ``copies``
    times, in this order, and its change of basis is the identity.
    """
    with _quiet():
        rep = group.bl_regular_representation(L)
    ids: list[tuple] = []
    counts: list[int] = []
    for psi in rep.irreps:
        if ids and ids[-1] == tuple(psi):
            counts[-1] += 1
        else:
            ids.append(tuple(psi))
            counts.append(1)
    sizes = [int(group.irrep(*psi).size) for psi in ids]
    copies = [int(group.irrep(*psi).size // group.irrep(*psi).sum_of_squares_constituents) for psi in ids]
    if counts != copies or len(set(ids)) != len(ids):
        raise ArithmeticError(f"{group.name}: bl_regular_representation({L}) repeats its irreps {counts} times, "
                              f"expected {copies}: escnn's coefficient layout changed")
    if not np.array_equal(rep.change_of_basis, np.eye(rep.size)):
        raise ArithmeticError(f"{group.name}: bl_regular_representation({L}) has a non-identity change of basis")
    offsets = np.concatenate([[0], np.cumsum([d * c for d, c in zip(sizes, copies)])[:-1]]).astype(int)
    return tuple(ids), tuple(int(o) for o in offsets), tuple(sizes), tuple(copies)


def _sampling_rows(images: tuple[np.ndarray, ...], sizes: tuple[int, ...], copies: tuple[int, ...]) -> np.ndarray:
    """S from irrep images: per irrep, sqrt(d) rho(g)[:, :c]^T flattened copy by copy."""
    blocks = []
    for stack, d, c in zip(images, sizes, copies):
        blocks.append(np.sqrt(d) * np.transpose(stack[:, :, :c], (0, 2, 1)).reshape(stack.shape[0], c * d))
    return np.concatenate(blocks, axis=1)


def group_sampling_row(spec: ContinuousGroupSpec, elements: list) -> np.ndarray:
    """Rows of the sampling functional at arbitrary elements of G, (len(elements), dim)."""
    group = escnn_group(spec)
    irreps, _, sizes, copies = _layout(group, spec.L)
    return _sampling_rows(irrep_matrices(group, irreps, elements), sizes, copies)


def random_elements(spec: ContinuousGroupSpec, count: int, seed: int) -> list:
    """``count`` elements of G drawn by escnn (reproducible for a seed)."""
    group = escnn_group(spec)
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        with _quiet():
            return [group.sample() for _ in range(count)]
    finally:
        np.random.set_state(state)


def subgroup(spec: ContinuousOperatorSpec) -> tuple[Any, Any, list, list]:
    """(escnn G, escnn H, H's elements in escnn's order, their images in G by the inclusion map)."""
    group = escnn_group(spec.group)
    sg_id = escnn_subgroup_id(spec)
    with _quiet():
        try:
            h, inclusion, _ = group.subgroup(sg_id)
        except (NotImplementedError, ValueError, AssertionError) as exc:
            raise SpecError(f"continuous operator {spec}: escnn has no subgroup {sg_id!r} of {group.name} "
                            f"({type(exc).__name__}: {exc})") from None
        elements = list(h.elements)
        images = [inclusion(e) for e in elements]
    if h.order() != spec.subgroup_order:
        raise SpecError(f"continuous operator {spec}: escnn's subgroup {sg_id!r} of {group.name} has "
                        f"{h.order()} elements, not |{spec.subgroup}| = {spec.subgroup_order}")
    return group, h, elements, images


@lru_cache(maxsize=32)
def sampling(spec: ContinuousOperatorSpec) -> Sampling:
    """Everything escnn says about sampling ``spec.group``'s band-limited fields on ``spec.subgroup`` (cached)."""
    group, h, elements, images = subgroup(spec)
    irreps, offsets, sizes, copies = _layout(group, spec.group.L)
    imgs = irrep_matrices(group, irreps, images)
    m = len(elements)
    with _quiet():
        regular = [np.asarray(h.regular_representation(e), dtype=np.float64) for e in elements]
        identity = next(i for i, e in enumerate(elements) if e == h.identity)
    cayley = np.stack([np.argmax(r, axis=0) for r in regular]).astype(np.int64)
    for a in range(m):  # a permutation matrix up to escnn's rounding (it builds it by a change of basis)
        expected = np.zeros((m, m))
        expected[cayley[a], np.arange(m)] = 1.0
        if np.abs(regular[a] - expected).max() > 1e-9:
            raise ArithmeticError(f"{h.name}: regular_representation({elements[a]}) is not a permutation matrix")
    return Sampling(
        spec=spec,
        subgroup_id=escnn_subgroup_id(spec),
        irreps=irreps,
        offsets=offsets,
        sizes=sizes,
        copies=copies,
        casimirs=tuple(casimir(spec.group.family, psi) for psi in irreps),
        sampling=_sampling_rows(imgs, sizes, copies),
        irrep_images=imgs,
        subgroup_cayley=cayley,
        subgroup_identity=int(identity),
        element_matrices=np.stack([_standard(spec.group.family, g) for g in images]),
        element_names=tuple(str(e).replace("\n", " ") for e in elements),
    )


def fourier_pointwise_matrix(spec: ContinuousGroupSpec, elements: list, normalize: bool = False) -> np.ndarray:
    """escnn's own sampling matrix: the ``A`` buffer of ``escnn.nn.FourierPointwise`` on G's band-limited
    fields of degree <= L, built in float64 on a grid of exactly ``elements`` (len(elements), dim).

    ``FourierPointwise`` takes its grid from ``G.grid(...)``; the grid is handed in by shadowing that
    method on the group object for the duration of the construction.
    """
    import torch

    group = escnn_group(spec)
    with _quiet():
        from escnn import gspaces, nn

        space = gspaces.no_base_space(group)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        group.grid = lambda *args, **kwargs: list(elements)
        try:
            module = nn.FourierPointwise(space, 1, group.bl_irreps(spec.L), normalize=normalize)
        finally:
            del group.grid
            torch.set_default_dtype(previous)
    return module.A.detach().cpu().numpy().astype(np.float64)
