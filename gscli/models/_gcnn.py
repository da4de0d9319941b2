"""What every G-CNN of gscli shares: its blocks, the invariant readout, tracing and lifting back to G.

:class:`GCNN` is the base of the planar :class:`~gscli.models._builder.GroupCNN` and the voxel
:class:`~gscli.models._voxel.VoxelGCNN`. A subclass builds ``self.blocks`` (modules), ``self._specs``
(one :class:`Block` per module) and ``self.head``, and implements ``_run(x, trace)``: the blocks on
``x`` followed by the invariant pooling; the rest only sees blocks and fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

import gscli.build  # noqa: F401  (lends the runtime its builder: models build missing operators on demand)
from gscli.nn import GroupDownsample
from gscli.specs import GroupSpec

__all__ = ["Block", "Traced", "GCNN"]


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


class GCNN(nn.Module):
    """Base of gscli's G-CNNs (see the module docstring)."""

    blocks: nn.ModuleList
    head: nn.Module
    _specs: list[Block]

    def _run(self, x: Tensor, trace: list[Traced] | None) -> Tensor:
        """The blocks on ``x`` (recording each output in ``trace``), then the invariant features ``(batch, fields)``."""
        raise NotImplementedError

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
