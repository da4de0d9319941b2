r"""3-D G-CNNs on voxel grids for the cube groups O and O_h, with gscli group downsampling.

The group convolutions are regular G-CNN convolutions (Cohen & Welling 2016; for the cube groups,
Winkels & Cohen 2018) whose filters are built from free weights by exact index permutations:

.. math:: W[(c', g), (c, h), x] = w[c', (c, g^{-1} h), g^{-1} x],

for g, h in the stage's group K (escnn's element order; the lifting convolution has no h), with
``g^{-1} x`` the voxel permutation of the kernel grid read off escnn's own transform
(:func:`gscli.models._escnn_nn.voxel_permutations`). Permutations are exact in every dtype, so a
model's logits are invariant under the last stage's group to float rounding (1e-15 relative in
float64), not to the float32 rounding of a sampled steerable basis. This is the model class escnn's
``R3Conv`` on regular fields describes too; ``R3Conv`` is not used because building one for O_h
regular fields takes tens of seconds to minutes per layer (see ``docs/models.md``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gscli.groups import induced_table
from gscli.models import _escnn_nn
from gscli.models._config import ConfigError, ModelConfig, resolve_operators
from gscli.models._gcnn import GCNN, Block, Traced
from gscli.nn import GroupDownsample, InputError
from gscli.specs import GroupSpec, OperatorSpec

__all__ = ["FieldBatchNorm3d", "GaussianBlur3d", "GroupConv3d", "ReadoutNorm", "VoxelGCNN"]


class GroupConv3d(nn.Module):
    r"""Lifting (``in_order = 1``) or regular group convolution on voxels, exact by construction.

    Parameters
    ----------
    in_fields, out_fields : int
        Regular fields in and out (scalar channels in, for lifting).
    fiber : ndarray of int64, shape (|K|, |K|), or None
        ``fiber[g, h]`` is the index of ``g^{-1} h`` in K; ``None`` for a lifting convolution.
    voxels : ndarray of int64, shape (|K|, k^3)
        ``voxels[g]`` is the permutation ``x -> g^{-1} x`` of the kernel grid (flattened).
    kernel_size, stride : int

    Notes
    -----
    Input ``(batch, in_fields * in_order, D, H, W)``, output ``(batch, out_fields * |K|, D', H', W')``,
    channel ``c * |K| + g`` (escnn's layout). Parameters: ``out_fields * in_fields * in_order * k^3``.
    """

    def __init__(self, in_fields: int, out_fields: int, fiber: np.ndarray | None, voxels: np.ndarray,
                 kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        order = voxels.shape[0]
        in_order = 1 if fiber is None else order
        self.kernel_size, self.stride, self.order, self.in_order = kernel_size, stride, order, in_order
        fan_in = in_fields * in_order * kernel_size**3
        weight = torch.randn(out_fields, in_fields * in_order, kernel_size**3) * math.sqrt(2 / fan_in)
        self.weight = nn.Parameter(weight)
        # W[(c', g), (c, h), x] = w[c', (c, g^-1 h), g^-1 x] as one flat index into w.reshape(out, -1), so that
        # the expansion is a single index_select (forward) and index_add (backward) on every training step
        h = np.arange(in_order)
        c = np.arange(in_fields)
        taps = kernel_size**3
        flat = np.empty((order, in_fields * in_order, taps), dtype=np.int64)
        for g in range(order):
            source = (c[:, None] * in_order + (h[None, :] if fiber is None else fiber[g][None, :])).reshape(-1)
            flat[g] = source[:, None] * taps + voxels[g][None, :]
        self.register_buffer("_flat_index", torch.from_numpy(flat.reshape(-1)), persistent=False)
        self._cache: tuple[tuple, Tensor] | None = None

    def expand(self) -> Tensor:
        """The expanded filter ``(out_fields * |K|, in_fields * in_order, k, k, k)``, computed now (with autograd)."""
        out, k = self.weight.shape[0], self.kernel_size
        w = self.weight.reshape(out, -1).index_select(1, self._flat_index)  # (out, |K| * in * in_order * k^3)
        return w.reshape(out * self.order, self.weight.shape[1], k, k, k)

    def filter(self) -> Tensor:
        """The expanded filter; outside training and autograd it is cached until the weight changes.

        The cache key is the weight's storage, dtype, device and in-place version counter (bumped by
        optimiser steps and ``load_state_dict``), and the index's version, so a stale filter is never used.
        """
        if self.training or (torch.is_grad_enabled() and self.weight.requires_grad):
            self._cache = None
            return self.expand()
        key = (self.weight.data_ptr(), self.weight._version, self.weight.dtype, self.weight.device,
               self._flat_index._version)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self.expand())
        return self._cache[1]

    def forward(self, x: Tensor) -> Tensor:
        return F.conv3d(x, self.filter(), stride=self.stride, padding=self.kernel_size // 2)

    def extra_repr(self) -> str:
        out, cin = self.weight.shape[0], self.weight.shape[1] // self.in_order
        return (f"{cin} -> {out} fields, |K|={self.order}, lifting={self.in_order == 1}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}")


class FieldBatchNorm3d(nn.Module):
    """Batch norm with one mean, variance and affine pair per regular field (over group and space)."""

    def __init__(self, fields: int, order: int) -> None:
        super().__init__()
        self.order = order
        self.norm = nn.BatchNorm3d(fields)

    def forward(self, x: Tensor) -> Tensor:
        b, c, d, h, w = x.shape
        return self.norm(x.reshape(b, c // self.order, self.order * d, h, w)).reshape(b, c, d, h, w)


class GaussianBlur3d(nn.Module):
    """Isotropic Gaussian blur (radius ceil(2 sigma), zero padding) then stride: commutes with every cube symmetry."""

    def __init__(self, sigma: float, stride: int) -> None:
        super().__init__()
        radius = max(1, math.ceil(2 * sigma))
        t = torch.arange(-radius, radius + 1, dtype=torch.float64)
        g = torch.exp(-(t**2) / (2 * sigma**2))
        g = g / g.sum()
        self.register_buffer("kernel", torch.einsum("i,j,k->ijk", g, g, g)[None, None], persistent=False)
        self.stride, self.radius = stride, radius

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        k = self.kernel.to(x.dtype).expand(c, 1, *self.kernel.shape[2:])
        return F.conv3d(x, k, stride=self.stride, padding=self.radius, groups=c)


class ReadoutNorm(nn.BatchNorm1d):
    """Batch norm of the pooled invariant features ``(batch, fields)``; a training batch of one uses the running statistics."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:  # one sample has no batch variance: normalise as in eval mode
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class VoxelGCNN(GCNN):
    r"""A G-CNN for cubic voxel grids, built from a 3-D :class:`~gscli.models.ModelConfig` (``grid_size``).

    Lifting convolution (voxels -> regular fields of G = O or O_h), group convolutions on regular
    fields of the stage's group (:class:`GroupConv3d`), per-field batch norm, ReLU, optional
    anti-aliased spatial striding (Gaussian blur then stride) or strided convolutions, group
    downsampling (:class:`gscli.nn.GroupDownsample`: anti-aliased ``D = S P``, plain ``S``, or
    none), and an invariant head: max over the group, mean over space, batch norm of those invariant
    features (with ``batch_norm``), one linear layer.

    *Input* ``(batch, in_channels, grid_size, grid_size, grid_size)``; *output* ``(batch, classes)``.

    Exactness: for every g of the last stage's group, ``model(g x) == model(x)`` to float rounding
    (:meth:`transform` applies g to voxels exactly). The downsampling operators are buffers.
    """

    def __init__(self, config: ModelConfig, store: str | Path | None = None) -> None:
        super().__init__()
        from gscli import _escnn

        if config.dimensions != 3:
            raise ConfigError(f"{config.name}: VoxelGCNN needs a 3-D configuration (grid_size), not image_size")
        self.config = config
        self.operators: list[OperatorSpec | None] = resolve_operators(config)
        G = _escnn.load_group(config.group)
        table = G.cayley
        group, nodes = config.group, tuple(range(config.group.order))
        self.blocks = nn.ModuleList()
        self._specs: list[Block] = []
        in_fields, lifting = config.in_channels, True
        for (side_in, side_out), stage, operator in zip(config.spatial_sizes(), config.stages, self.operators):
            kernel = _escnn_nn.voxel_permutations(config.group, stage.kernel_size)[list(nodes)]
            k_table = induced_table(table, np.asarray(nodes, dtype=np.int64))  # K's table, in K's escnn order
            inverse = np.argmax(k_table == nodes.index(G.identity), axis=1)
            fiber = None if lifting else k_table[inverse]  # fiber[g, h] = g^{-1} h
            blur = stage.stride > 1 and config.spatial_antialias
            layers: list[nn.Module] = [GroupConv3d(in_fields, stage.channels, fiber, kernel, stage.kernel_size,
                                                   1 if blur else stage.stride)]
            if config.batch_norm:
                layers.append(FieldBatchNorm3d(stage.channels, len(nodes)))
            layers.append(nn.ReLU(inplace=True))
            self._add(nn.Sequential(*layers),
                      Block(f"{stage.name}.conv", "conv", group, stage.channels, side_in if blur else side_out,
                            nodes, 3))
            if blur:
                self._add(GaussianBlur3d(config.blur_sigma, stage.stride),
                          Block(f"{stage.name}.pool", "pool", group, stage.channels, side_out, nodes, 3))
            if operator is not None:
                layer = GroupDownsample.from_catalog(str(operator), store=store,
                                                     antialias=config.group_downsampling == "antialiased")
                if not group.planar and not layer.escnn_gspace:
                    raise ConfigError(f"stage {stage.name!r}: the {operator} operator's subgroup copy has no escnn 3-D "
                                      "gspace (rebuild it with this gscli: gscli build --force)")
                group = GroupSpec.parse(str(operator.subgroup))
                nodes = tuple(nodes[i] for i in layer.subgroup_nodes.tolist())
                self._add(layer, Block(f"{stage.name}.group", "group", group, stage.channels, side_out, nodes, 3))
            in_fields, lifting = stage.channels, False
        # The pooled invariant features of a voxel grid are mostly background: across pieces they vary by
        # about a tenth of their mean, so a bare linear head learns from them very slowly (a model that fits
        # 64 pieces with it stays near chance). A batch norm on them (per feature, so exactly invariant)
        # puts that variation on the head's scale.
        self.readout_norm = ReadoutNorm(config.stages[-1].channels) if config.batch_norm else nn.Identity()
        self.head = nn.Linear(config.stages[-1].channels, config.classes)
        self.final_group = group
        inverse = np.argmax(table == G.identity, axis=1)
        self.register_buffer("_fiber_inverse", torch.from_numpy(table[inverse]), persistent=False)  # [g, h] = g^-1 h
        self.register_buffer("_input_permutations",
                             torch.from_numpy(_escnn_nn.voxel_permutations(config.group, config.image_size)),
                             persistent=False)

    @torch.no_grad()
    def calibrate(self, images: Tensor, batch_size: int = 64) -> None:
        """Recompute every batch norm's running statistics from ``images`` with the current weights.

        Call it after training. Adam moves each weight by about the learning rate per step, which for
        group convolutions (fan-in ``fields * |K| * k^3``, weights of size ~0.03) rescales the
        pre-norm activations by large factors within a few steps; batch norm hides that in training,
        but its running statistics, an average over the last ~10 steps, fall far behind, and the
        eval-mode model then predicts at chance although the training-mode one fits the data.
        The statistics become exact averages over ``images`` (``momentum = None``), in batches of
        ``batch_size``; the model is left in eval mode.
        """
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        self.train()
        dtype = self.head.weight.dtype
        for first in range(0, len(images), batch_size):
            self(images[first : first + batch_size].to(dtype))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.eval()

    def _add(self, module: nn.Module, block: Block) -> None:
        self.blocks.append(module)
        self._specs.append(block)

    @property
    def block_specs(self) -> list[Block]:
        return list(self._specs)

    def _check(self, x: Tensor) -> None:
        c, s = self.config, self.config.image_size
        if not isinstance(x, Tensor) or x.dim() != 5 or tuple(x.shape[1:]) != (c.in_channels, s, s, s):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"{c.name}: expected voxels (batch, C, D, H, W) = (batch, {c.in_channels}, {s}, {s}, "
                             f"{s}), got {got}")
        # No silent cast: a float64 input to a float32 model would lose the precision it was made for
        # (exactness checks), and integer or boolean voxels need a deliberate choice of scale.
        dtype = self.head.weight.dtype
        if x.dtype != dtype:
            raise InputError(f"{c.name}: expected {str(dtype).removeprefix('torch.')} voxels (the model's dtype), got "
                             f"{str(x.dtype).removeprefix('torch.')}; convert them with x.to({dtype}) or build the "
                             "model in that dtype (build_model(..., dtype=...))")

    def transform(self, x: Tensor, element: int) -> Tensor:
        """Apply element ``element`` of G (escnn's order) to voxels ``(batch, C, s, s, s)``: an exact permutation."""
        self._check(x)
        perm = self._input_permutations[element]
        return x.reshape(*x.shape[:2], -1)[:, :, perm].reshape(x.shape)

    def transform_fields(self, features: Tensor, element: int) -> Tensor:
        """Apply element g of G to regular G-fields ``(batch, C*|G|, s, s, s)``: ``(g.F)(h, y) = F(g^-1 h, g^-1 y)``."""
        n, b, s = self.config.group.order, features.shape[0], features.shape[-1]
        if features.dim() != 5 or features.shape[1] % n or features.shape[2:] != (s, s, s):
            raise InputError(f"expected regular {self.config.group}-fields (batch, C*{n}, s, s, s), "
                             f"got {tuple(features.shape)}")
        perm = torch.from_numpy(_escnn_nn.voxel_permutations(self.config.group, s)[element]).to(features.device)
        moved = features.reshape(b, -1, n, s**3)[..., perm]
        return moved[:, :, self._fiber_inverse[element]].reshape(features.shape)

    def _run(self, x: Tensor, trace: list[Traced] | None) -> Tensor:
        self._check(x)
        if x.shape[0] == 0:  # an empty batch gives empty outputs of the right shapes (batch norm refuses it)
            if trace is not None:
                trace.extend(Traced(b, x.new_zeros(0, b.fields * b.group.order, *(b.side,) * 3)) for b in self._specs)
            return x.new_zeros(0, self._specs[-1].fields)
        h = x
        for module, block in zip(self.blocks, self._specs):
            h = module(h)
            if trace is not None:
                trace.append(Traced(block, h))
        return self.readout_norm(self.pool(h, self._specs[-1]))

    def extra_repr(self) -> str:
        chain = " -> ".join([str(self.config.group)] + [str(op.subgroup) for op in self.operators if op is not None])
        s = self.config.image_size
        return (f"name={self.config.name!r}, groups={chain}, variant={self.config.group_downsampling}, "
                f"grid={s}x{s}x{s}, classes={self.config.classes}")

