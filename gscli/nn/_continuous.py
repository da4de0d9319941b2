"""Runtime layers for continuous-group operators (docs/continuous.md): torch only, escnn never imported here.

Tensors are ``(batch, C*dim, *spatial)`` for band-limited fields (C fields of escnn's
``bl_regular_representation(L)``, coefficients fastest) and ``(batch, C*|H|, *spatial)`` for
H-regular fields (H's elements fastest, escnn's order), any number of spatial axes. Operators are
float64 buffers (saved with a model's ``state_dict``), cast to the input's dtype and device per call.
escnn ``GeometricTensor`` in, ``GeometricTensor`` out: the output's field type is built from the
input's gspace (``gspace.restrict(escnn_subgroup_id)`` for H-fields), which needs escnn only because
the caller already has it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gscli.errors import FormatError, InputError
from gscli.fileformat import OperatorData, read_operator
from gscli.specs import ContinuousOperatorSpec

__all__ = ["ContinuousDownsample", "ContinuousUpsample", "SubgroupPointwise"]


def _is_geometric(x: Any) -> bool:
    module = sys.modules.get("escnn.nn")
    return module is not None and isinstance(x, module.GeometricTensor)


def _as_id(sg_id: Any) -> Any:
    return tuple(_as_id(v) for v in sg_id) if isinstance(sg_id, (list, tuple)) else sg_id


class _Parts:
    """What the layers take from an operator: its matrices, spec, escnn subgroup id and coefficient layout."""

    def __init__(self, source: Any) -> None:
        if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
            source = read_operator(source)  # verified, like every operator file
        if isinstance(source, OperatorData):
            where = str(source.path or "operator")
            if source.kind != "continuous":
                raise FormatError(f"{where}: holds an operator of kind {source.kind!r}, not 'continuous' "
                                  f"(use gscli.nn.GroupDownsample for group operators)")
            self.irreps = tuple(tuple(json.loads(i)) for i, c in zip(source["bands/irrep"], source["bands/copies"])
                                for _ in range(int(c)))
            self.subgroup_id = _as_id(json.loads(source.attrs["escnn_subgroup_id"]))
        else:  # a gscli.families.continuous.ContinuousOperator, built or read
            self.irreps = tuple(tuple(b.irrep) for b, c in zip(source.bands, source.copies) for _ in range(c))
            self.subgroup_id = _as_id(source.subgroup_id)
        self.spec = source.spec
        self._source = source

    def __getitem__(self, name: str) -> np.ndarray:
        return self._source[name]


class _Operator(nn.Module):
    """Holds one (rows, cols) float64 matrix and applies it to the field axis of a tensor."""

    def __init__(self, matrix: np.ndarray, spec: ContinuousOperatorSpec, subgroup_id: Any, irreps: tuple[tuple, ...]) -> None:
        super().__init__()
        self.register_buffer("matrix", torch.as_tensor(np.ascontiguousarray(matrix), dtype=torch.float64))
        self.spec = spec
        self.subgroup_id = _as_id(subgroup_id)
        self.irreps = irreps  # the coefficient layout, one id per irrep copy (escnn's representation.irreps)
        self._types: dict[Any, Any] = {}

    def _apply_matrix(self, x: Tensor, matrix: Tensor) -> Tensor:
        rows, cols = matrix.shape
        if not isinstance(x, Tensor) or x.ndim < 2:
            raise InputError(f"{type(self).__name__}({self.spec}) takes a tensor (batch, C*{cols}, *spatial), "
                             f"got {type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}")
        if not x.is_floating_point():
            raise InputError(f"{type(self).__name__}({self.spec}) takes a floating-point tensor, got {x.dtype}")
        if x.shape[1] % cols:
            raise InputError(f"{type(self).__name__}({self.spec}): {x.shape[1]} channels is not a multiple of {cols} "
                             f"(C fields of {cols} numbers each)")
        fields = x.shape[1] // cols
        xs = x.reshape(x.shape[0], fields, cols, -1)
        y = torch.einsum("rc,bfcs->bfrs", matrix.to(device=x.device, dtype=x.dtype), xs)
        return y.reshape(x.shape[0], fields * rows, *x.shape[2:])

    def extra_repr(self) -> str:
        rows, cols = self.matrix.shape
        return f"{self.spec}, {cols} -> {rows} per field, escnn subgroup {self.subgroup_id!r}"

    # escnn field types, built once per gspace from the caller's escnn

    def _check_band_limited(self, field_type: Any) -> int:
        expected = [tuple(i) for i in self.irreps]
        for rep in field_type.representations:
            if [tuple(i) for i in rep.irreps] != expected or not np.allclose(rep.change_of_basis, np.eye(rep.size)):
                raise InputError(f"{type(self).__name__}({self.spec}) takes fields of {self.spec.group.name}'s "
                                 f"bl_regular_representation({self.spec.group.L}); got {rep.name}")
        return len(field_type.representations)

    def _subgroup_type(self, field_type: Any, fields: int) -> Any:
        key = ("H", field_type.gspace, fields)
        if key not in self._types:
            space = field_type.gspace.restrict(self.subgroup_id)[0]
            self._types[key] = type(field_type)(space, [space.regular_repr] * fields)
        return self._types[key]


class ContinuousDownsample(_Operator):
    """Band-limited fields of G -> H-regular fields: ``y = D x`` (``antialias=True``) or ``S x``, per field.

    D = S P samples the anti-aliased field; it is H-equivariant, D rho_L(h) = lambda_H(h) D.

    >>> import numpy as np, torch
    >>> from gscli.specs import ContinuousOperatorSpec
    >>> layer = ContinuousDownsample(np.eye(3), ContinuousOperatorSpec.parse("SO2_L1>C3"), 3, ((0,), (1,)))
    >>> layer(torch.ones(2, 6, 5)).shape
    torch.Size([2, 6, 5])
    """

    @classmethod
    def from_operator(cls, source: Any, antialias: bool = True) -> ContinuousDownsample:
        """From a :class:`~gscli.continuous.ContinuousOperator`, the :class:`~gscli.fileformat.OperatorData`
        of its file, or the file's path (read and verified by :func:`gscli.fileformat.read_operator`)."""
        op = _Parts(source)
        return cls(op["downsample"] if antialias else op["sampling"], op.spec, op.subgroup_id, op.irreps)

    def forward(self, x: Any) -> Any:
        if _is_geometric(x):
            fields = self._check_band_limited(x.type)
            out_type = self._subgroup_type(x.type, fields)
            return type(x)(self._apply_matrix(x.tensor, self.matrix), out_type, getattr(x, "coords", None))
        return self._apply_matrix(x, self.matrix)


class ContinuousUpsample(_Operator):
    """H-regular fields -> band-limited fields of G: ``x = U y``, per field (S U = I when |H| <= dim).

    For ``GeometricTensor`` input, ``gspace`` (escnn's gspace of G, e.g. ``rot2dOnR2(-1)``) gives the output type.
    """

    def __init__(self, matrix: np.ndarray, spec: ContinuousOperatorSpec, subgroup_id: Any, irreps: tuple[tuple, ...],
                 gspace: Any = None) -> None:
        super().__init__(matrix, spec, subgroup_id, irreps)
        self.gspace = gspace

    @classmethod
    def from_operator(cls, source: Any, gspace: Any = None) -> ContinuousUpsample:
        op = _Parts(source)
        return cls(op["upsample"], op.spec, op.subgroup_id, op.irreps, gspace)

    def forward(self, x: Any) -> Any:
        if _is_geometric(x):
            if self.gspace is None:
                raise InputError(f"ContinuousUpsample({self.spec}) needs gspace= (escnn's gspace of "
                                 f"{self.spec.group.name}) to return a GeometricTensor")
            m = self.matrix.shape[1]
            fields = x.type.size // m
            key = ("G", self.gspace, fields)
            if key not in self._types:
                rep = self.gspace.fibergroup.bl_regular_representation(self.spec.group.L)
                self._types[key] = type(x.type)(self.gspace, [rep] * fields)
            return type(x)(self._apply_matrix(x.tensor, self.matrix), self._types[key], getattr(x, "coords", None))
        return self._apply_matrix(x, self.matrix)


class SubgroupPointwise(_Operator):
    """A pointwise nonlinearity through the samples on H: ``x -> U sigma(D x)`` per field (``S x`` if ``antialias=False``).

    Exactly H-equivariant (D, U are, and sigma acts sample by sample, so it commutes with the
    permutations lambda_H(h)); when sigma(D x) are the samples of some v in the kept space V, the
    output is v exactly (U S v = v). Input and output are band-limited fields of the same type.
    """

    def __init__(self, down: np.ndarray, up: np.ndarray, spec: ContinuousOperatorSpec, subgroup_id: Any,
                 irreps: tuple[tuple, ...], function: Callable[[Tensor], Tensor] = torch.relu) -> None:
        super().__init__(down, spec, subgroup_id, irreps)
        self.register_buffer("up", torch.as_tensor(np.ascontiguousarray(up), dtype=torch.float64))
        self.function = function

    @classmethod
    def from_operator(cls, source: Any, function: Callable[[Tensor], Tensor] = torch.relu,
                      antialias: bool = True) -> SubgroupPointwise:
        op = _Parts(source)
        return cls(op["downsample"] if antialias else op["sampling"], op["upsample"], op.spec, op.subgroup_id,
                   op.irreps, function)

    def forward(self, x: Any) -> Any:
        if _is_geometric(x):
            self._check_band_limited(x.type)
            return type(x)(self._forward(x.tensor), x.type, getattr(x, "coords", None))
        return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        return self._apply_matrix(self.function(self._apply_matrix(x, self.matrix)), self.up)
