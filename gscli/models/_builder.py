"""The G-CNN builder: escnn group convolutions with gscli group downsampling between stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gscli.models import _escnn_nn
from gscli.models._config import ModelConfig, resolve_operators
from gscli.nn import GroupDownsample, InputError
from gscli.specs import GroupSpec, OperatorSpec

__all__ = ["Block", "GroupCNN", "Traced", "build_model"]


@dataclass(frozen=True)
class Block:
    """What one block of a :class:`GroupCNN` outputs.

    ``kind`` is ``conv`` (conv, norm, ReLU), ``pool`` (anti-aliased spatial downsampling) or
    ``group`` (group downsampling K -> H). ``group`` is the group the output fields live on, and
    ``nodes_in_g`` the index in G of each of its elements, in escnn's order for that group.
    """

    name: str
    kind: str
    group: GroupSpec
    fields: int
    side: int
    nodes_in_g: tuple[int, ...]
    dims: int = 2  # spatial dimensions: 2 (images) or 3 (voxels)

    @property
    def size(self) -> int:
        """Activations per image: fields * |group| * side^dims."""
        return self.fields * self.group.order * self.side**self.dims


@dataclass(frozen=True)
class Traced:
    """A block's output for a batch: the plain tensor ``(batch, fields*|K|, side, side)``."""

    block: Block
    tensor: Tensor


class GroupCNN(nn.Module):
    r"""A G-CNN for square images, built from a :class:`~gscli.models.ModelConfig`.

    Lifting convolution (image -> regular fields of G), group convolutions (escnn ``R2Conv`` on
    regular fields of the stage's group), inner batch norm, ReLU, optional anti-aliased spatial
    downsampling (Gaussian blur then stride, escnn's ``PointwiseAvgPoolAntialiased2D``) or strided
    convolutions, group downsampling stages (:class:`gscli.nn.GroupDownsample`, anti-aliased
    ``D = S P`` or plain ``S``, or none), and an invariant head: max over the group, mean over
    space, one linear layer.

    Parameters
    ----------
    config : ModelConfig
        The architecture; ``config.group_downsampling`` picks the variant.
    store : str or Path, optional
        Operator store (default: ``$GSCLI_STORE`` or ``operators/``); missing operators are built
        into it (with an :class:`~gscli.nn.OperatorBuiltWarning`).

    Notes
    -----
    *Input* ``(batch, in_channels, image_size, image_size)``; *output* logits ``(batch, classes)``.
    Regular fields have the group index fastest (channel ``c*|K| + i`` is field c at element
    k_i of K, escnn's order), which is the layout of both escnn and gscli; after each group
    downsampling the next convolutions live on escnn's restricted gspace ``gspace.restrict(id)``
    with the id stored in the operator file, and the builder checks that escnn's elements of H are
    the file's ``subgroup_nodes`` in the same order.

    Exactness: for every grid transform g (90-degree rotation or flip) that lies in the last
    stage's group, ``model(g x) == model(x)`` up to float rounding, provided the grid centre is a
    sample point at every stride (odd sizes with ``(side - 1) % stride == 0``, which the
    configuration enforces).

    The downsampling operators are buffers (saved in the ``state_dict``, broadcast by
    ``DistributedDataParallel``), never parameters.
    """

    def __init__(self, config: ModelConfig, store: str | Path | None = None) -> None:
        super().__init__()
        enn = _escnn_nn.enn()
        self.config = config
        self.operators: list[OperatorSpec | None] = resolve_operators(config)
        gspace = _escnn_nn.gspace_of(config.group)
        in_type = enn.FieldType(gspace, [gspace.trivial_repr] * config.in_channels)
        self.input_type = in_type
        self.blocks = nn.ModuleList()
        self._specs: list[Block] = []
        self._types: list[Any] = []  # escnn FieldType of every block's output
        group, nodes = config.group, tuple(range(config.group.order))
        for (side_in, side_out), stage, operator in zip(config.spatial_sizes(), config.stages, self.operators):
            out_type = enn.FieldType(gspace, [gspace.regular_repr] * stage.channels)
            blur = stage.stride > 1 and config.spatial_antialias
            layers = [enn.R2Conv(in_type, out_type, kernel_size=stage.kernel_size, padding=stage.kernel_size // 2,
                                 stride=1 if blur else stage.stride)]
            if config.batch_norm:
                layers.append(enn.InnerBatchNorm(out_type))
            layers.append(enn.ReLU(out_type, inplace=True))
            self._add(enn.SequentialModule(*layers), Block(f"{stage.name}.conv", "conv", group, stage.channels,
                                                          side_in if blur else side_out, nodes), out_type)
            if blur:
                pool = enn.PointwiseAvgPoolAntialiased2D(out_type, sigma=config.blur_sigma, stride=stage.stride)
                self._add(pool, Block(f"{stage.name}.pool", "pool", group, stage.channels, side_out, nodes), out_type)
            if operator is not None:
                layer = GroupDownsample.from_catalog(str(operator), store=store,
                                                     antialias=config.group_downsampling == "antialiased")
                sub_nodes = layer.subgroup_nodes.tolist()
                gspace = _escnn_nn.restrict(gspace, layer.escnn_subgroup_id, sub_nodes, str(operator))
                group = GroupSpec.parse(str(operator.subgroup))
                nodes = tuple(nodes[i] for i in sub_nodes)
                out_type = enn.FieldType(gspace, [gspace.regular_repr] * stage.channels)
                self._add(layer, Block(f"{stage.name}.group", "group", group, stage.channels, side_out, nodes),
                          out_type)
            in_type = out_type
        self.head = nn.Linear(config.stages[-1].channels, config.classes)
        self.final_group = group

    def _add(self, module: nn.Module, block: Block, out_type: Any) -> None:
        self.blocks.append(module)
        self._specs.append(block)
        self._types.append(out_type)

    @property
    def block_specs(self) -> list[Block]:
        """What every block outputs (names, groups, shapes), in order."""
        return list(self._specs)

    def field_type(self, index: int) -> Any:
        """escnn ``FieldType`` of block ``index``'s output."""
        return self._types[index]

    def _check(self, x: Tensor) -> None:
        c = self.config
        expected = (c.in_channels, c.image_size, c.image_size)
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != expected:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"{c.name}: expected images (batch, {c.in_channels}, {c.image_size}, {c.image_size}), "
                             f"got {got}")

    def _run(self, x: Tensor, trace: list[Traced] | None) -> Tensor:
        self._check(x)
        enn = _escnn_nn.enn()
        h = enn.GeometricTensor(x, self.input_type)
        for module, block, out_type in zip(self.blocks, self._specs, self._types):
            if block.kind == "group":
                h = enn.GeometricTensor(module(h.tensor), out_type)
            else:
                h = module(h)
            if trace is not None:
                trace.append(Traced(block, h.tensor))
        return self.pool(h.tensor, self._specs[-1])

    @staticmethod
    def pool(features: Tensor, block: Block) -> Tensor:
        """Invariant pooling of regular fields: max over the group, mean over space -> ``(batch, fields)``."""
        batch = features.shape[0]
        fibers = features.reshape(batch, block.fields, block.group.order, -1)
        return fibers.amax(dim=2).mean(dim=2)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(batch, classes)`` of images ``(batch, in_channels, side, side)``."""
        return self.head(self._run(x, None))

    def trace(self, x: Tensor) -> tuple[list[Traced], Tensor, Tensor]:
        """Every block's output, the pooled invariant features ``(batch, fields)`` and the logits."""
        found: list[Traced] = []
        pooled = self._run(x, found)
        return found, pooled, self.head(pooled)

    def downsampling_layers(self) -> list[GroupDownsample]:
        """The group downsampling layers, in order."""
        return [m for m in self.blocks if isinstance(m, GroupDownsample)]

    def lift(self, features: Tensor, index: int) -> Tensor:
        """Map block ``index``'s output back to regular fields of G with the layers' reconstructions U.

        For blocks still on G this is the identity. For a block after downsamplings G -> H_1 -> ...
        -> H_k it is ``U_1 ... U_k`` applied to every field (``GroupDownsample.upsample``): the
        bandlimited G-signal whose samples on H_k the features are.
        """
        ups = [m for m in list(self.blocks)[: index + 1] if isinstance(m, GroupDownsample)]
        for layer in reversed(ups):
            features = layer.upsample(features)
        return features

    def parameter_count(self) -> int:
        """Trainable parameters (escnn's free kernel coefficients, norms, head)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def activation_count(self) -> int:
        """Activations per image over all blocks (what training keeps for the backward pass, roughly)."""
        return sum(b.size for b in self._specs)

    def extra_repr(self) -> str:
        chain = " -> ".join([str(self.config.group)] + [str(op.subgroup) for op in self.operators if op is not None])
        return (f"name={self.config.name!r}, groups={chain}, variant={self.config.group_downsampling}, "
                f"image_size={self.config.image_size}, classes={self.config.classes}")


def build_model(config: ModelConfig, variant: str | None = None, store: str | Path | None = None,
                seed: int | None = None, dtype: torch.dtype = torch.float32) -> GroupCNN:
    """Build a :class:`GroupCNN` for ``config`` (optionally another ``variant``), seeded and in ``dtype``.

    A 3-D configuration (``grid_size``) gives a :class:`~gscli.models._voxel.VoxelGCNN` instead.

    escnn samples its kernel bases in float32 whatever the dtype, so a float64 model is exactly
    equivariant only to about 1e-8 (relative), not to float64 rounding.

    With the same ``seed``, the ``antialiased`` and ``plain`` variants get identical weights (the
    downsampling layers have no parameters).
    """
    if variant is not None:
        config = config.with_variant(variant)
    if seed is not None:
        torch.manual_seed(seed)
    if config.dimensions == 3:
        from gscli.models._voxel import VoxelGCNN

        return VoxelGCNN(config, store=store).to(dtype)  # type: ignore[return-value]
    return GroupCNN(config, store=store).to(dtype)
