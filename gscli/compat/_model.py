"""The research code's ``get_model``: a gscli G-CNN built from the research call's arguments."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gscli.compat._layer import (
    _WHY_OPTIMISER,
    GROUP_TYPES,
    CompatWarning,
    _device_of,
    _group,
    _unused_optimiser,
    _warn_unused,
    operator_for,
)
from gscli.errors import InputError, SubgroupError, shorten
from gscli.models._builder import GroupCNN
from gscli.specs import GroupSpec

__all__ = ["get_model", "CompatGroupCNN"]


# -- get_model ----------------------------------------------------------------------------------


def get_model(
    input_channel: int,
    num_channels: Sequence[int] | None = None,
    num_layers: int = 2,
    kernel_sizes: Sequence[int] | None = None,
    num_classes: int = 10,
    dwn_group_types: Sequence[Sequence[str]] | None = None,
    init_group_order: int = 12,
    spatial_subsampling_factors: Sequence[int] | None = None,
    subsampling_factors: Sequence[int] | None = None,
    domain: int = 2,
    pooling_type: str = "max",
    apply_antialiasing: bool = True,
    dropout_rate: float = 0.0,
    layer_kwargs: Mapping[str, Any] | None = None,
    antialiasing_kwargs: Mapping[str, Any] | None = None,
    fully_convolutional: bool = False,
    *,
    image_size: int | None = None,
    store: str | Path | None = None,
) -> nn.Module:
    """The research code's ``get_model``: a 2-D G-CNN, built by :mod:`gscli.models` with gscli operators.

    Stage i: group convolution on ``dwn_group_types[i][0]`` (the lifting convolution first), ReLU,
    anti-aliased spatial striding by ``spatial_subsampling_factors[i]``, then, when
    ``subsampling_factors[i] > 1``, group downsampling to ``dwn_group_types[i][1]`` of that index
    (same meaning as :class:`SubgroupDownsample`); the head pools and applies one linear layer. The
    group starts as ``dwn_group_types[0][0]`` of order ``init_group_order``.

    Returns a :class:`gscli.models.GroupCNN` (logits ``(batch, num_classes)`` of images
    ``(batch, input_channel, side, side)``). It accepts any image side unless ``image_size`` (gscli
    only) is given; exact equivariance to 90-degree rotations needs odd sides with
    ``(side - 1)`` divisible by every stride (as gscli's configurations require).

    Keywords with no gscli counterpart are accepted and reported once as unused: the optimiser
    settings in ``antialiasing_kwargs``, ``layer_kwargs`` (dilation), ``pooling_type`` (gscli pools
    max over the group, mean over space), ``dropout_rate``.
    """
    from gscli.models import parse_config

    if domain != 2:
        raise SubgroupError(f"domain {shorten(domain)} is not supported by gscli.compat.get_model; allowed: 2 (images)")
    if fully_convolutional:
        raise SubgroupError("fully_convolutional=True is not supported: gscli's G-CNN ends with pooling and a "
                            "linear layer; allowed: False")
    input_channel = _positive("input_channel", input_channel)
    num_layers = _positive("num_layers", num_layers, what="the number of stages")
    num_classes = _positive("num_classes", num_classes, minimum=2)
    init_group_order = _positive("init_group_order", init_group_order, what="N of the first group C_N or D_N")
    num_channels = _int_list("num_channels", num_channels, num_layers, 32)
    kernel_sizes = _int_list("kernel_sizes", kernel_sizes, num_layers, 7)
    spatial = _int_list("spatial_subsampling_factors", spatial_subsampling_factors, num_layers, 1)
    factors = _int_list("subsampling_factors", subsampling_factors, num_layers, 1)
    for i, kernel in enumerate(kernel_sizes[:num_layers]):
        if kernel % 2 == 0:
            raise SubgroupError(f"kernel_sizes[{i}] = {kernel} must be odd (centred kernels keep rotations exact); "
                                f"allowed: 1, 3, 5, 7, ...")
    dwn_group_types = _pairs(dwn_group_types, num_layers)
    unused = [(_unused_optimiser(antialiasing_kwargs, "antialiasing_kwargs"), _WHY_OPTIMISER)]
    if layer_kwargs:
        unused.append(([f"layer_kwargs={dict(layer_kwargs)!r}"], "gscli's convolutions are escnn R2Conv, undilated"))
    if pooling_type not in ("max", "mean"):
        raise SubgroupError(f"pooling_type {pooling_type!r} is not supported; allowed: 'max', 'mean'")
    if pooling_type != "max":
        unused.append(([f"pooling_type={pooling_type!r}"], "gscli's head pools max over the group, mean over space"))
    if dropout_rate:
        unused.append(([f"dropout_rate={dropout_rate!r}"], "gscli's G-CNN has no dropout"))

    group, _ = _group(dwn_group_types[0][0], init_group_order)
    notes: list[str] = []
    stages: list[dict[str, Any]] = []
    current = group
    for i in range(num_layers):
        pair = dwn_group_types[i]
        stage_group, _ = _group(pair[0], current.n if current.planar else None)
        if stage_group != current:
            raise SubgroupError(f"dwn_group_types[{i}][0] = {pair[0]!r} is not the group stage {i} receives "
                                f"({current}); the previous stage downsampled to it")
        stage: dict[str, Any] = {"name": f"layer{i}", "channels": num_channels[i], "kernel_size": kernel_sizes[i],
                                 "stride": spatial[i]}
        if factors[i] > 1:
            translation = operator_for(pair[0], current.n if current.planar else None, pair[1], factors[i])
            notes.extend(translation.notes)
            stage["subgroup"] = str(translation.operator.subgroup)
            current = GroupSpec.parse(str(translation.operator.subgroup))
        stages.append(stage)
    # any side is accepted at run time (CompatGroupCNN); the configuration gets one that its checks accept
    side = image_size if image_size is not None else _internal_side(kernel_sizes[:num_layers], spatial[:num_layers])
    config = parse_config({
        "name": "compat", "group": str(group), "image_size": side, "in_channels": input_channel,
        "classes": num_classes, "group_downsampling": "antialiased" if apply_antialiasing else "plain",
        "spatial_antialias": True, "batch_norm": False, "stages": stages,
    })
    for note in notes:
        warnings.warn(note, CompatWarning, stacklevel=2)
    _warn_unused(unused)
    return CompatGroupCNN(config, store=store, any_size=image_size is None)


def _integer(value: Any) -> int | None:
    """``value`` as a Python int if it is an integer (numpy integers too, not bools), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _kind(value: Any) -> str:
    """The type name before a bad value that is not an integer (``str '2'``), else nothing."""
    return "" if _integer(value) is not None else f"{type(value).__name__} "


def _positive(name: str, value: Any, minimum: int = 1, what: str = "") -> int:
    number = _integer(value)
    if number is None or number < minimum:
        hint = f" ({what})" if what else ""
        raise SubgroupError(f"{name} = {_kind(value)}{shorten(value)} must be an integer >= {minimum}{hint}")
    return number


def _int_list(name: str, value: Any, num_layers: int, default: int) -> list[int]:
    """A per-stage list of positive integers (``None``: ``default`` for every stage), checked."""
    if value is None:
        return num_layers * [default]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise SubgroupError(f"{name} = {type(value).__name__} {shorten(value)} must be a list of {num_layers} "
                            f"positive integers, one per stage (num_layers = {num_layers})")
    items = list(value)
    if len(items) < num_layers:
        raise SubgroupError(f"{name} has {len(items)} entries, but num_layers is {num_layers}")
    for i, item in enumerate(items[:num_layers]):
        number = _integer(item)
        if number is None or number < 1:
            raise SubgroupError(f"{name}[{i}] = {_kind(item)}{shorten(item)} must be a positive integer "
                                f"({name} = {shorten(value)})")
        items[i] = number
    return items


def _pairs(value: Any, num_layers: int) -> list[list[str]]:
    """``dwn_group_types``: one ``[group_type, sub_group_type]`` pair of strings per stage."""
    if value is None:
        return num_layers * [["dihedral", "dihedral"]]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise SubgroupError(f"dwn_group_types = {type(value).__name__} {shorten(value)} must be a list of "
                            f"{num_layers} [group_type, sub_group_type] pairs, one per stage")
    pairs = list(value)
    if len(pairs) < num_layers:
        raise SubgroupError(f"dwn_group_types has {len(pairs)} entries, but num_layers is {num_layers}")
    for i, pair in enumerate(pairs[:num_layers]):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2 \
                or not all(isinstance(t, str) for t in pair):
            raise SubgroupError(f"dwn_group_types[{i}] = {shorten(pair)} must be [group_type, sub_group_type], "
                                f"two strings among {', '.join(map(repr, GROUP_TYPES))}")
    return [list(p) for p in pairs]


def _internal_side(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """The smallest image side gscli's configuration checks accept for these stages.

    The side s_0 is odd, (s_i - 1) is divisible by stage i's stride (s_{i+1} - 1 = (s_i - 1) / stride_i),
    and every kernel fits its map (s_i >= kernel_i). With P_i the product of the strides before
    stage i, s_i - 1 = (s_0 - 1) / P_i, so s_0 - 1 is the least multiple of lcm(2, P) that is at
    least every P_i (kernel_i - 1) and at least 2. Models built with it still take any side.
    """
    step = math.lcm(2, math.prod(strides))
    need, before = 2, 1
    for kernel, stride in zip(kernels, strides):
        need = max(need, before * (kernel - 1))
        before *= stride
    return 1 + step * -(-need // step)


class CompatGroupCNN(GroupCNN):
    """A :class:`gscli.models.GroupCNN` that, like the research code's models, takes images of any side.

    With ``any_size=False`` it checks the configured ``image_size`` as GroupCNN does. Besides
    GroupCNN's API it has the research model's ``device``, ``get_feature`` and ``get_hidden_feature``.
    """

    def __init__(self, config: Any, store: str | Path | None = None, any_size: bool = True) -> None:
        super().__init__(config, store=store)
        self.any_size = any_size

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live now."""
        return _device_of(self)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text.replace(f"image_size={self.config.image_size}", "image_size=any") if self.any_size else text

    def get_feature(self, x: Tensor) -> Tensor:
        """The invariant features before the linear head, ``(batch, num_channels[-1])``.

        As the research model's ``get_feature``: the last stage's output pooled over group and space
        (gscli pools max over the group, mean over space); ``forward(x) == head(get_feature(x))``.
        """
        return self._run(x, None)

    def get_hidden_feature(self, x: Tensor) -> tuple[list[Tensor], list[Tensor], list[Any]]:
        """Every stage's features before and after its group downsampling, and the downsampling layers.

        As the research model's ``get_hidden_feature``: three lists with one entry per stage,
        ``before[i]`` the output of stage i's convolution, ReLU and spatial subsampling,
        ``after[i]`` that after the stage's group downsampling (``before[i]`` itself where the
        stage has none), both detached copies; ``layers[i]`` the stage's
        :class:`gscli.nn.GroupDownsample` or ``None``. A gscli layer's call returns the tensor
        alone (the research layer returns ``(out, canonicalization_element)``); ``upsample`` maps back.
        """
        traced, _, _ = self.trace(x)
        before: list[Tensor] = []
        after: list[Tensor] = []
        layers: list[Any] = []
        modules = dict(zip((b.name for b in self.block_specs), self.blocks))
        for stage in self.config.stages:
            mine = [t for t in traced if t.block.name.startswith(f"{stage.name}.")]
            spatial = [t for t in mine if t.block.kind != "group"]
            group = [t for t in mine if t.block.kind == "group"]
            before.append(spatial[-1].tensor.detach().clone())
            after.append((group[-1] if group else spatial[-1]).tensor.detach().clone())
            layers.append(modules[group[-1].block.name] if group else None)
        return before, after, layers

    def _check(self, x: Tensor) -> None:
        if not self.any_size:
            return super()._check(x)
        channels = self.config.in_channels
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != channels:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"expected images (batch, {channels}, side, side), got {got}")
        return None
