"""Coset tables for canonicalization (numpy, float64), and the output type of a canonicalizing layer.

Left cosets c H of H in G, each named by a fixed representative: the identity for H itself (so
coset 0 is H), the smallest element index for the others. Shifting a signal by lambda(c^{-1}) before
sampling is a column permutation of the operator, so every coset gets its own fused matrix.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from torch import Tensor

from gscli.groups import identity_index as identity_of
from gscli.groups import inverse_table

__all__ = ["Canonicalized", "identity_of", "coset_table", "shifted_operators"]


class Canonicalized(NamedTuple):
    """Output of a canonicalizing layer: the H-signal and the coset it was taken in.

    ``output`` is ``(batch, C*|H|, *spatial)`` (a ``GeometricTensor`` if the input was one);
    ``coset`` is ``(batch,)`` int64, the index k of the coset c_k H chosen per sample (the layer's
    ``coset_representatives[k]`` is c_k as an element index of G). Pass the pair to ``upsample``.
    """

    output: Any
    coset: Tensor


def coset_table(cayley: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left cosets of H = ``nodes`` in G.

    Parameters
    ----------
    cayley : ndarray of int, shape (n, n)
        G's Cayley table, ``cayley[a, b]`` = index of g_a g_b.
    nodes : ndarray of int, shape (m,)
        Indices in G of H's elements.

    Returns
    -------
    coset_of : ndarray of int64, shape (n,)
        ``coset_of[x]`` is the coset k with ``g_x`` in ``c_k H``.
    representatives : ndarray of int64, shape (n // m,)
        ``c_k`` as an index in G; ``representatives[0]`` is the identity.
    """
    n = cayley.shape[0]
    coset_of = np.full(n, -1, dtype=np.int64)
    e = identity_of(cayley)
    order = [e] + [x for x in range(n) if x != e]
    representatives = []
    for x in order:
        if coset_of[x] < 0:
            coset_of[cayley[x, nodes]] = len(representatives)
            representatives.append(x)
    return coset_of, np.asarray(representatives, dtype=np.int64)


def shifted_operators(
    downsample: np.ndarray, upsample: np.ndarray, cayley: np.ndarray, representatives: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``D lambda(c_k^{-1})`` and ``lambda(c_k) U`` for every representative ``c_k``.

    With ``lambda(g) e_x = e_{g x}``: ``(D lambda(c^{-1}))[:, x] = D[:, c^{-1} x]`` and
    ``(lambda(c) U)[x, :] = U[c^{-1} x, :]``.

    Returns
    -------
    down : ndarray of float64, shape (K, m, n)
    up : ndarray of float64, shape (K, n, m)
    """
    inverse = inverse_table(cayley)
    perms = cayley[inverse[representatives]]  # (K, n): row k is x -> c_k^{-1} x
    down = np.stack([downsample[:, p] for p in perms]).astype(np.float64)
    up = np.stack([upsample[p, :] for p in perms]).astype(np.float64)
    return down, up
