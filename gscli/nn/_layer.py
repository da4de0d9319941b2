"""The runtime layer: apply a gscli operator to feature maps with one fused matmul (torch only)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gscli.errors import FormatError, InputError
from gscli.groups import homomorphism_defects, sampling_matrix
from gscli.nn import _cosets, _interop
from gscli.nn._cosets import Canonicalized
from gscli.nn._source import catalog_file
from gscli.specs import OperatorSpec

__all__ = ["GroupDownsample", "Canonicalized", "InputError", "FLOAT_DTYPES"]

#: Input dtypes the layer accepts; the float64 operators are applied in the input's dtype.
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# Buffers that always stay float64 (whatever .to(dtype) / .half() asks), so no precision is lost.
_MASTER_BUFFERS = ("operator_down", "operator_up", "_down_stack", "_up_stack")
_EXTRA_STATE_FORMAT = "gscli-runtime/1"


def _master_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


def _as_index_array(a: Any, name: str) -> np.ndarray:
    array = np.asarray(a)
    if array.dtype.kind not in "iu":
        raise FormatError(f"{name} must hold integer indices, got dtype {array.dtype}")
    return array.astype(np.int64)


class GroupDownsample(nn.Module):
    r"""Group downsampling G -> H of regular feature fields, with equivariant anti-aliasing.

    Applies the operator :math:`D = S P` (shape ``(|H|, |G|)``) of a gscli operator file to every
    regular field of a feature map, as one batched matmul in the input's dtype:

    .. math:: y[b, c|H| + i, s] = \sum_j D[i, j]\, x[b, c|G| + j, s]

    and :meth:`upsample` applies :math:`U` (shape ``(|G|, |H|)``). For H-bandlimited fields,
    ``upsample(forward(x)) == x``; for every h in H, ``forward`` commutes with the joint action of h
    on the base space and the fibers.

    Parameters
    ----------
    downsample : array, shape (m, n)
        D = S P, float64 (n = |G|, m = |H|).
    upsample : array, shape (n, m)
        U = B (S B)^{-1}, float64.
    subgroup_nodes : array of int, shape (m,)
        Index in G of each element of H, in H's element order.
    group_cayley, subgroup_cayley : array of int, shapes (n, n) and (m, m)
        Cayley tables of G and H; ``subgroup_nodes`` must be a homomorphism between them.
    group, subgroup : str
        Spec strings, e.g. ``"D12"`` and ``"D6"``.
    fields : int, optional
        If given, inputs must have exactly ``fields * |G|`` channels.
    antialias : bool
        ``False`` replaces D by plain subsampling S (for comparisons; not anti-aliased).
    canonicalize : bool
        Make downsampling G-equivariant by canonicalization (see below); ``forward`` then returns
        :class:`Canonicalized`.
    canonical_field : int, optional
        The field whose group values choose the coset; ``None`` sums over all fields.
    source : str, optional
        Where the operator came from (shown by ``repr``).
    escnn_subgroup_id : optional
        escnn's id of H in G (from the file), used to restrict escnn gspaces.
    escnn_gspace : str, optional
        Point groups: escnn's 3-D gspace of H-fields (from the file), e.g. ``"rot2dOnR3(4)"``;
        ``""`` when escnn has none, ``None`` when the file does not say.
    checksum : str, optional
        The operator file's checksum (kept in the module's extra state).

    Notes
    -----
    *Input.* ``x`` is ``(batch, C*|G|, *spatial)`` with 0 to 3 spatial dimensions, the group index
    fastest (channel ``c*|G| + i`` is field c at element g_i), dtype float16, bfloat16, float32 or
    float64, on the layer's device. The operators are kept in float64 whatever ``.to(dtype)``
    asks and are cast once per (dtype, device) and cached. Non-finite values pass through without
    an error: a NaN or inf in a field spreads to all |H| outputs of that field at that position.

    *Canonicalization* (Xu et al., NeurIPS 2021). Per sample, sum the chosen field(s) over space
    and fields into a vector p on G (accumulated in float32, float64 for float64 inputs), take
    g* = argmax p (ties: lowest index) and the coset c_k H holding g*; output
    :math:`y = D \lambda(c_k^{-1}) x` and k. Because argmax(lambda(g) p) = g argmax(p), the coset
    moves with g, and ``upsample`` (which applies :math:`\lambda(c_k) U`) makes downsample ->
    upsample commute with every g in G, not only H. Maxima tied exactly, or within the rounding
    of the sums (a transformed input is summed in another order), can pick another coset and
    break this; where the signal is itself invariant (e.g. bandlimited O_h -> O signals under
    -I) either choice gives the same round trip. The per-coset matrices are precomputed; a call
    reads the input once more for the sums, gathers one matrix per sample and runs one batched
    matmul. Coset indices passed to ``upsample`` are range-checked on CPU in eager mode only.

    *state_dict.* D and U (float64) and ``subgroup_nodes`` are saved in the model's
    ``state_dict`` (``operator_down``, ``operator_up``, ``subgroup_nodes``), together with an
    extra state naming the group, subgroup and file checksum. Loading a checkpoint needs a layer
    built for the same ``G>H`` (e.g. from any file of that operator); the checkpoint's operators
    then replace the file's, so a saved model reproduces exactly even if operator files change.
    A checkpoint of another operator is refused with :class:`~gscli.errors.FormatError`.

    *escnn.* If escnn is installed, ``forward`` also takes a ``GeometricTensor`` of C regular
    fields of G and returns one of C regular fields of H on the restricted gspace (planar gspaces
    through the file's escnn subgroup id; 3D gspaces where escnn has a gspace for H that embeds
    like the file's H). This module never imports escnn itself.

    Examples
    --------
    An operator computed in memory (pure numpy; files are read with :meth:`from_file`):

    >>> import numpy as np, torch
    >>> from gscli.groups import FiniteGroup, cyclic_table
    >>> from gscli.solver import solve
    >>> nodes = np.arange(0, 8, 2)
    >>> sol = solve(FiniteGroup("C8", cyclic_table(8), 0, (1,), tuple(map(str, range(8)))), nodes)
    >>> layer = GroupDownsample(sol.downsample, sol.upsample, nodes, cyclic_table(8), cyclic_table(4),
    ...                         group="C8", subgroup="C4")
    >>> x = torch.randn(2, 3 * 8, 5, 5)
    >>> layer(x).shape
    torch.Size([2, 12, 5, 5])
    >>> x_band = layer.upsample(torch.randn(2, 3 * 4, 5, 5))     # bandlimited fields
    >>> torch.allclose(layer.upsample(layer(x_band)), x_band, atol=1e-5)
    True
    """

    operator_down: Tensor
    operator_up: Tensor
    subgroup_nodes: Tensor
    _down_stack: Tensor
    _up_stack: Tensor
    _coset_of: Tensor
    coset_representatives: Tensor

    def __init__(
        self,
        downsample: Any,
        upsample: Any,
        subgroup_nodes: Any,
        group_cayley: Any,
        subgroup_cayley: Any,
        *,
        group: str,
        subgroup: str,
        fields: int | None = None,
        antialias: bool = True,
        canonicalize: bool = False,
        canonical_field: int | None = None,
        source: str | None = None,
        escnn_subgroup_id: Any = None,
        escnn_gspace: str | None = None,
        checksum: str | None = None,
    ) -> None:
        super().__init__()
        spec = OperatorSpec.parse(f"{group}>{subgroup}")
        n, m = spec.group.order, spec.subgroup.order
        down = np.asarray(downsample, dtype=np.float64)
        up = np.asarray(upsample, dtype=np.float64)
        nodes = _as_index_array(subgroup_nodes, "subgroup_nodes")
        cayley_g = _as_index_array(group_cayley, "group_cayley")
        cayley_h = _as_index_array(subgroup_cayley, "subgroup_cayley")
        _check_arrays(spec, down, up, nodes, cayley_g, cayley_h)
        _check_options(fields, canonicalize, canonical_field)

        self.spec = spec
        self.group_order, self.subgroup_order, self.rate = n, m, spec.rate
        self.fields = fields
        self.antialias = bool(antialias)
        self.canonicalize = bool(canonicalize)
        self.canonical_field = canonical_field
        self.source = source
        self.escnn_subgroup_id = escnn_subgroup_id
        self.escnn_gspace = escnn_gspace  # None: not recorded (planar or older file); "": escnn has none
        self.checksum = checksum
        self._group_cayley = cayley_g
        self._subgroup_cayley = cayley_h
        self._cast_cache: dict[tuple[torch.dtype, torch.device], tuple[Tensor, Tensor]] = {}
        self._escnn_cache: dict[str, Any] = {}
        self.register_buffer("operator_down", torch.from_numpy(down.copy()))
        self.register_buffer("operator_up", torch.from_numpy(up.copy()))
        self.register_buffer("subgroup_nodes", torch.from_numpy(nodes.copy()))
        self._derive()

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_operator(cls, data: Any, **options: Any) -> GroupDownsample:
        """Layer from an :class:`~gscli.fileformat.OperatorData` (what ``read_operator`` returns)."""
        if getattr(data, "kind", "group") != "group":
            from gscli.errors import FormatError

            raise FormatError(f"{data.path}: holds a {data.kind} operator ({data.spec}), not a group operator; "
                              "resample images with gscli.scale.resample")
        attrs = data.attrs
        escnn_id = json.loads(attrs.get("escnn_subgroup_id", "null"))
        if isinstance(escnn_id, list):
            escnn_id = tuple(escnn_id)
        return cls(
            data["downsample"], data["upsample"], data["subgroup_nodes"], data["group_cayley"],
            data["subgroup_cayley"], group=str(attrs["group"]), subgroup=str(attrs["subgroup"]),
            source=str(data.path) if data.path is not None else None, escnn_subgroup_id=escnn_id,
            escnn_gspace=attrs.get("escnn_gspace"), checksum=attrs.get("checksum"), **options,
        )

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> GroupDownsample:
        """Layer from an operator file (format, version and checksum verified).

        Raises :class:`~gscli.errors.FormatError` for a missing, truncated, foreign, damaged or
        newer-version file. ``options`` are the keyword options of the constructor.
        """
        from gscli.fileformat import read_operator

        return cls.from_operator(read_operator(path), **options)

    @classmethod
    def from_catalog(
        cls, name: str, store: str | Path | None = None, build: bool = True, **options: Any
    ) -> GroupDownsample:
        """Layer for a catalog name (``"D12-D6"`` or ``"D12>D6"``) from the operator store.

        Operators of the default catalog come from the files shipped with gscli (no escnn needed);
        others from the store: ``store``, else ``$GSCLI_STORE``, else ``operators/`` (the order and
        why: :mod:`gscli.nn._source`). A missing file is built
        into the store when ``build`` is true and escnn is installed (with an
        :class:`~gscli.nn.OperatorBuiltWarning`); otherwise :class:`~gscli.errors.FormatError` says how to build it.
        The file is verified like :meth:`from_file`, and one that holds another operator than
        ``name`` (a file copied under the wrong name) is refused with :class:`~gscli.errors.FormatError`.
        """
        from gscli.fileformat import read_operator
        from gscli.specs import GridOperatorSpec, parse_operator_spec

        spec = name if isinstance(name, OperatorSpec) else parse_operator_spec(name)
        if isinstance(spec, GridOperatorSpec):  # the same explanation as from_file gives for a grid file
            from gscli.errors import FormatError

            raise FormatError(f"{spec} is a grid operator, not a group operator; resample images with "
                              "gscli.scale.resample (its file: gscli.scale.summarize_grid, gscli inspect)")
        return cls.from_operator(read_operator(catalog_file(spec, store, build), expect=spec), **options)

    # -- derived tables and dtype handling -----------------------------------------------------

    def _derive(self) -> None:
        """(Re)build the fused per-coset matrices from the float64 operators.

        The derived tables are copies: they never share memory with the buffers they come from.
        """
        device = self.operator_down.device
        down = self.operator_down.detach().to("cpu", torch.float64).numpy().copy()
        up = self.operator_up.detach().to("cpu", torch.float64).numpy().copy()
        nodes = self.subgroup_nodes.detach().cpu().numpy().copy()
        if not self.antialias:
            down = sampling_matrix(down.shape[1], nodes)
        cayley = self._group_cayley
        if self.canonicalize:
            coset_of, reps = _cosets.coset_table(cayley, nodes)
            down_stack, up_stack = _cosets.shifted_operators(down, up, cayley, reps)
        else:
            coset_of = np.zeros(cayley.shape[0], dtype=np.int64)
            reps = np.array([_cosets.identity_of(cayley)], dtype=np.int64)
            down_stack, up_stack = down[None], up[None]
        master = _master_dtype(device)
        for name, stack in (("_down_stack", down_stack), ("_up_stack", up_stack)):
            tensor = torch.from_numpy(np.ascontiguousarray(stack)).to(device, master)
            self.register_buffer(name, tensor, persistent=False)
        self.register_buffer("_coset_of", torch.from_numpy(coset_of).to(device), persistent=False)
        self.register_buffer("coset_representatives", torch.from_numpy(reps).to(device), persistent=False)
        self._cast_cache.clear()

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> GroupDownsample:  # type: ignore[override]
        originals = {name: self._buffers[name] for name in _MASTER_BUFFERS}
        super()._apply(fn, recurse)
        for name, original in originals.items():
            moved = self._buffers[name]
            assert moved is not None and original is not None
            self._buffers[name] = original.to(device=moved.device, dtype=_master_dtype(moved.device))
        self._cast_cache.clear()
        return self

    def _operators(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """The fused (down, up) stacks in ``dtype``, cast once and cached (not while compiling)."""
        if torch.compiler.is_compiling():
            return self._down_stack.to(dtype), self._up_stack.to(dtype)
        key = (dtype, self._down_stack.device)
        cached = self._cast_cache.get(key)
        if cached is None:
            cached = (self._down_stack.to(dtype).contiguous(), self._up_stack.to(dtype).contiguous())
            self._cast_cache[key] = cached
        return cached

    # -- state_dict and pickling ---------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cast_cache"], state["_escnn_cache"] = {}, {}  # caches (and escnn objects) are not state
        return state

    def get_extra_state(self) -> dict[str, Any]:
        return {"format": _EXTRA_STATE_FORMAT, "group": str(self.spec.group), "subgroup": str(self.spec.subgroup),
                "checksum": self.checksum}

    def _check_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or state.get("format") != _EXTRA_STATE_FORMAT:
            raise FormatError(
                f"checkpoint extra state {state!r:.200} is not from a gscli GroupDownsample ({_EXTRA_STATE_FORMAT})"
            )
        theirs = f"{state.get('group')}>{state.get('subgroup')}"
        if theirs != str(self.spec):
            raise FormatError(f"checkpoint holds {theirs:.100} operators, but this layer applies {self.spec}; "
                              f"build the layer from a {theirs:.100} operator file to load it")

    def set_extra_state(self, state: Any) -> None:
        self._check_extra_state(state)
        self.checksum = state.get("checksum")

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Validate everything the checkpoint would change, then load it and rebuild the derived tables.

        A refused checkpoint raises :class:`FormatError` before a single value is copied, so the
        layer stays exactly as it was. The loaded operators pass the constructor's checks.
        """
        extra = prefix + "_extra_state"
        if extra in state_dict:
            self._check_extra_state(state_dict[extra])
        incoming = {}
        for name in ("operator_down", "operator_up", "subgroup_nodes"):
            value = state_dict.get(prefix + name, getattr(self, name))
            if not isinstance(value, Tensor):
                raise FormatError(f"checkpoint entry {prefix + name!r} is a {type(value).__name__}, not a tensor")
            incoming[name] = value.detach().cpu().numpy()
        try:
            down = np.asarray(incoming["operator_down"], dtype=np.float64)
            up = np.asarray(incoming["operator_up"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise FormatError(f"checkpoint operators of {self.spec} are not real numbers ({exc})") from None
        nodes = _as_index_array(incoming["subgroup_nodes"], "checkpoint subgroup_nodes")
        _check_arrays(self.spec, down, up, nodes, self._group_cayley, self._subgroup_cayley, what="checkpoint")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        master = _master_dtype(self.operator_down.device)
        for name in ("operator_down", "operator_up", "subgroup_nodes"):  # own the loaded values (load with assign=True)
            dtype = torch.int64 if name == "subgroup_nodes" else master
            self._buffers[name] = self._buffers[name].detach().to(dtype=dtype, copy=True)
        self._derive()

    # -- application ---------------------------------------------------------------------------

    def _check(self, x: Any, order: int, what: str) -> tuple[int, int, tuple[int, ...]]:
        """Validate a plain tensor with ``order`` group channels per field; return (batch, fields, spatial)."""
        if not isinstance(x, Tensor):
            raise InputError(f"{what} expects a torch.Tensor (or an escnn GeometricTensor), got {type(x).__name__}")
        if x.dtype not in FLOAT_DTYPES:
            raise InputError(f"{what} expects a floating tensor (float16, bfloat16, float32 or float64), got {x.dtype}")
        if not 2 <= x.dim() <= 5:
            raise InputError(
                f"{what} expects (batch, C*{order}, *spatial) with 0 to 3 spatial dimensions (2 to 5 dimensions), "
                f"got shape {tuple(x.shape)} ({x.dim()} dimensions)"
            )
        channels = x.shape[1]
        group = self.spec.group if order == self.group_order else self.spec.subgroup
        if channels == 0 or channels % order:
            raise InputError(
                f"{what} expects channels C*|{group}| = C*{order} (group index fastest), got {channels} channels "
                f"in shape {tuple(x.shape)}"
            )
        if self.fields is not None and channels != self.fields * order:
            raise InputError(
                f"{what} expects {self.fields} fields of |{group}| = {order}: {self.fields * order} channels, "
                f"got {channels}"
            )
        if x.device != self._down_stack.device:
            raise InputError(
                f"input is on {x.device} but the layer is on {self._down_stack.device}; move it with .to()"
            )
        return x.shape[0], channels // order, tuple(x.shape[2:])

    def forward(self, x: Any) -> Any:
        """Downsample ``x`` ``(batch, C*|G|, *spatial)`` to ``(batch, C*|H|, *spatial)``.

        Returns a tensor, or :class:`Canonicalized` ``(output, coset)`` when the layer
        canonicalizes; a ``GeometricTensor`` input gives a ``GeometricTensor`` output.
        """
        if isinstance(x, Tensor):
            return self._down(x)
        if _interop.is_geometric(x):
            return _interop.downsample(self, x)
        self._check(x, self.group_order, "forward")  # raises with a message naming what arrived
        raise AssertionError("unreachable")

    def _down(self, x: Tensor) -> Tensor | Canonicalized:
        batch, fields, spatial = self._check(x, self.group_order, "forward")
        n, m = self.group_order, self.subgroup_order
        down, _ = self._operators(x.dtype)
        if not self.canonicalize:
            return _apply_fiber(down[0], x, batch, fields, spatial)
        size = math.prod(spatial)
        x4 = x.reshape(batch, fields, n, size)
        if self.canonical_field is not None:
            if self.canonical_field >= fields:
                raise InputError(f"canonical_field {self.canonical_field} is not one of the input's {fields} fields")
            x4c = x4[:, self.canonical_field : self.canonical_field + 1]
        else:
            x4c = x4
        accumulate = torch.float64 if x.dtype == torch.float64 else torch.float32
        pooled = x4c.sum(dim=3, dtype=accumulate).sum(dim=1)  # (batch, n): G-equivariant
        coset = self._coset_of[pooled.argmax(dim=1)]  # (batch,)
        y = torch.matmul(down[coset].unsqueeze(1), x4)  # (batch, 1, m, n) @ (batch, fields, n, size)
        return Canonicalized(y.reshape(batch, fields * m, *spatial), coset)

    def upsample(self, y: Any, coset: Tensor | None = None, *, gspace: Any = None) -> Any:
        """Map ``(batch, C*|H|, *spatial)`` back to ``(batch, C*|G|, *spatial)`` with U.

        A canonicalizing layer needs the ``coset`` its ``forward`` returned (or the
        :class:`Canonicalized` pair itself as ``y``). A ``GeometricTensor`` of H-fields returns one
        of G-fields, on ``gspace`` or on the gspace this layer last downsampled from.
        """
        if isinstance(y, Canonicalized):
            if coset is not None:
                raise InputError("pass either a Canonicalized pair or (output, coset), not both")
            y, coset = y.output, y.coset
        if not isinstance(y, Tensor) and _interop.is_geometric(y):
            return _interop.upsample(self, y, coset, gspace)
        return self._up(y, coset)

    def _up(self, y: Tensor, coset: Tensor | None) -> Tensor:
        batch, fields, spatial = self._check(y, self.subgroup_order, "upsample")
        n, m = self.group_order, self.subgroup_order
        _, up = self._operators(y.dtype)
        if not self.canonicalize:
            if coset is not None:
                raise InputError("this layer does not canonicalize (canonicalize=False); upsample takes no coset")
            return _apply_fiber(up[0], y, batch, fields, spatial)
        if coset is None:
            raise InputError("this layer canonicalizes: upsample needs the coset forward returned, "
                             "e.g. layer.upsample(layer(x)) or layer.upsample(y, coset)")
        if not isinstance(coset, Tensor) or coset.dtype not in (torch.int64, torch.int32) or coset.shape != (batch,):
            if isinstance(coset, Tensor):
                what = f"{coset.dtype} tensor of shape {tuple(coset.shape)}"
            else:
                what = type(coset).__name__
            raise InputError(f"coset must be an int64 tensor of shape ({batch},), got {what}")
        checkable = coset.device.type == "cpu" and not torch.compiler.is_compiling()  # no device sync, no graph break
        if checkable and coset.numel() and (int(coset.min()) < 0 or int(coset.max()) >= self.rate):
            raise InputError(f"coset indices must lie in 0..{self.rate - 1}, got {coset.tolist()}")
        size = math.prod(spatial)
        x = torch.matmul(up[coset.to(self._up_stack.device)].unsqueeze(1), y.reshape(batch, fields, m, size))
        return x.reshape(batch, fields * n, *spatial)

    def extra_repr(self) -> str:
        parts = [f"group={self.spec.group}", f"subgroup={self.spec.subgroup}", f"rate={self.rate}"]
        if self.fields is not None:
            parts.append(f"fields={self.fields}")
        if not self.antialias:
            parts.append("antialias=False")
        if self.canonicalize:
            parts.append("canonicalize=True")
            if self.canonical_field is not None:
                parts.append(f"canonical_field={self.canonical_field}")
        parts.append(f"source={self.source!r}")
        return ", ".join(parts)


def _apply_fiber(matrix: Tensor, x: Tensor, batch: int, fields: int, spatial: tuple[int, ...]) -> Tensor:
    """``matrix`` (p, q) on the group axis of ``x`` (batch, fields*q, *spatial): one matmul.

    Contiguous inputs are only viewed, never copied; the output is (batch, fields*p, *spatial).
    """
    p, q = matrix.shape
    if not spatial:
        return (x.reshape(batch * fields, q) @ matrix.T).reshape(batch, fields * p)
    x3 = x.reshape(batch * fields, q, math.prod(spatial))
    return torch.matmul(matrix, x3).reshape(batch, fields * p, *spatial)


def _check_arrays(
    spec: OperatorSpec, down: np.ndarray, up: np.ndarray, nodes: np.ndarray, cayley_g: np.ndarray, cayley_h: np.ndarray,
    what: str = "",
) -> None:
    """Raise :class:`FormatError` unless the arrays are a G>H operator: shapes, finiteness, homomorphism.

    The one validation of a layer's operators: the constructor runs it, and so does loading a
    ``state_dict`` (``what="checkpoint"``), before anything is copied.
    """
    n, m = spec.group.order, spec.subgroup.order
    where = f"{what} of {spec}" if what else str(spec)
    expected = {"downsample": (down, (m, n)), "upsample": (up, (n, m)), "subgroup_nodes": (nodes, (m,)),
                "group_cayley": (cayley_g, (n, n)), "subgroup_cayley": (cayley_h, (m, m))}
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise FormatError(f"{where}: {name} has shape {array.shape}, expected {shape} (|G| = {n}, |H| = {m})")
    if not (np.isfinite(down).all() and np.isfinite(up).all()):
        raise FormatError(f"{where}: the operators hold non-finite values")
    if nodes.min() < 0 or nodes.max() >= n or len(set(nodes.tolist())) != m:
        shown = nodes.tolist() if m <= 64 else f"{nodes[:64].tolist()} ..."
        raise FormatError(f"{where}: subgroup_nodes must be {m} distinct indices below {n}, got {shown}")
    try:
        defects = homomorphism_defects(cayley_g, cayley_h, nodes)
        _cosets.identity_of(cayley_g)
    except (IndexError, ValueError) as exc:
        raise FormatError(f"{where}: invalid Cayley tables ({exc})") from None
    if defects:
        raise FormatError(
            f"{where}: subgroup_nodes is not a homomorphism from H's Cayley table into G's "
            f"({defects} of {m * m} products disagree): the sampled elements do not form the subgroup {spec.subgroup}"
        )


def _check_options(fields: int | None, canonicalize: bool, canonical_field: int | None) -> None:
    for name, value in (("fields", fields), ("canonical_field", canonical_field)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise InputError(f"{name} must be a non-negative integer or None, got {value!r}")
    if fields == 0:
        raise InputError("fields must be positive, got 0")
    if fields is not None and canonical_field is not None and canonical_field >= fields:
        raise InputError(f"canonical_field {canonical_field} is not one of the {fields} fields (0..{fields - 1})")
    if canonical_field is not None and not canonicalize:
        raise InputError("canonical_field is only used with canonicalize=True")
