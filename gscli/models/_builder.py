"""The planar G-CNN: escnn group convolutions with gscli group downsampling between stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from gscli.models import _escnn_nn
from gscli.models._config import ModelConfig, resolve_operators
from gscli.models._gcnn import GCNN, Block, Traced
from gscli.nn import GroupDownsample, InputError
from gscli.specs import GroupSpec, OperatorSpec

__all__ = ["Block", "GroupCNN", "Traced"]


class GroupCNN(GCNN):
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

    def extra_repr(self) -> str:
        chain = " -> ".join([str(self.config.group)] + [str(op.subgroup) for op in self.operators if op is not None])
        return (f"name={self.config.name!r}, groups={chain}, variant={self.config.group_downsampling}, "
                f"image_size={self.config.image_size}, classes={self.config.classes}")
