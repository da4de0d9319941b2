"""Model configurations: parse a JSON/TOML file into frozen values and validate it (pure Python).

A configuration describes a G-CNN for square images: a group G (C_N or D_N), a list of stages, and
how group downsampling is done. Every stage is::

    conv (lifting conv for the first stage) -> [batch norm] -> ReLU
        -> [spatial downsampling by ``stride``] -> [group downsampling K -> H]

where K is the group the stage's convolution lives on (G for the first stage) and H the subgroup
named by ``subgroup`` (a type such as ``"D2"``) or ``rate`` (the index |K|/|H|). The head pools
over the last group and over space, then applies one linear layer.

Validation happens here, without escnn: group and subgroup types, rates, odd kernel sizes, and
spatial sizes that keep the grid's centre a sample point (so that strided sampling commutes exactly
with 90-degree rotations and flips). A ``rate`` that two subgroup types share (e.g. rate 2 in D_N:
D_{N/2} or C_N) is resolved when the model is built, by gscli's subgroup rule (least aliasing, as
``gscli build --rate``); see :func:`resolve_operators`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gscli.errors import SpecError, SubgroupError
from gscli.models._recipe import DATASETS, TRAINING_KEYS, TrainingConfig, parse_recipe
from gscli.models._validate import ConfigError, bool_key, float_key, int_key, unknown_keys
from gscli.specs import GroupSpec, OperatorSpec, SubgroupSpec

__all__ = [
    "VARIANTS",
    "VOXEL_SUBGROUPS",
    "ConfigError",
    "ModelConfig",
    "StageConfig",
    "TrainingConfig",
    "parse_gcnn_config",
    "resolve_operators",
    "subgroup_types",
    "estimate_memory",
    "check_memory",
]

#: Group downsampling variants: the gscli operator D = S P, plain subsampling S, or none (stay on G).
VARIANTS = ("antialiased", "plain", "none")

#: 3-D (voxel) models: point groups of the lifting convolution, and the subgroups a stage may
#: downsample them to -- those whose least-aliasing copy is the fiber group of one of escnn's 3-D
#: gspaces (``gscli build`` prefers that copy on ties), so the next stage still has escnn's element
#: order. Below these, C<N>/D<N> stages continue as in 2-D.
#: I is left out: its 3- and 5-fold rotations move voxels off the grid, so no I-model is exactly
#: equivariant on voxels (only its D2 of 180-degree turns about the axes is exact).
VOXEL_SUBGROUPS = {"Oh": ("O", "D4", "C4", "D2", "C2", "C1"), "O": ("D4", "C4", "D2", "C2", "C1")}

_MODEL_KEYS = {
    "kind": "gcnn (this model kind, the default) or scale (scale-equivariant Fourier models)",
    "name": "a label for tables and plots (default: the file name)",
    "group": "the group G of the lifting convolution: C<N> or D<N> (images), Oh or O (grid_size voxels)",
    "image_size": "side of the square input images, odd (e.g. 17 or 33)",
    "grid_size": "3-D models: side of the cubic voxel grid, odd (e.g. 9); group Oh or O",
    "in_channels": "channels of the input images (default 1)",
    "classes": "number of classes (default 10)",
    "group_downsampling": "antialiased | plain | none (default antialiased)",
    "spatial_antialias": "blur (Gaussian) before spatial striding (default true)",
    "blur_sigma": "standard deviation of that blur in pixels (default 0.66)",
    "batch_norm": "batch norm over each regular field after every conv (default true)",
    "stages": "the list of stages",
    "training": "settings for --weights trained and the training benchmark",
}
_STAGE_KEYS = {
    "name": "a label (default stage<i>)",
    "channels": "number of regular fields the stage's conv outputs",
    "kernel_size": "odd kernel size (default 3)",
    "stride": "spatial downsampling factor (default 1)",
    "subgroup": "group downsampling to this subgroup type (e.g. D2, C4)",
    "rate": "group downsampling by this index |K|/|H|",
}
@dataclass(frozen=True)
class StageConfig:
    """One stage: conv -> [norm] -> ReLU -> [spatial stride] -> [group downsampling].

    ``subgroup`` and ``rate`` are as written in the file (either, both or neither).
    """

    name: str
    channels: int
    kernel_size: int = 3
    stride: int = 1
    subgroup: SubgroupSpec | None = None
    rate: int | None = None

    @property
    def downsamples_group(self) -> bool:
        """Whether the stage ends with group downsampling."""
        return self.subgroup is not None or self.rate is not None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "channels": self.channels, "kernel_size": self.kernel_size,
                               "stride": self.stride}
        if self.subgroup is not None:
            out["subgroup"] = str(self.subgroup)
        if self.rate is not None:
            out["rate"] = self.rate
        return out


@dataclass(frozen=True)
class ModelConfig:
    """A validated model configuration (see the module docstring for the architecture)."""

    name: str
    group: GroupSpec
    stages: tuple[StageConfig, ...]
    image_size: int = 17
    in_channels: int = 1
    classes: int = 10
    group_downsampling: str = "antialiased"
    spatial_antialias: bool = True
    blur_sigma: float = 0.66
    batch_norm: bool = True
    training: TrainingConfig = field(default_factory=TrainingConfig)
    dimensions: int = 2  # 3: voxel grids (grid_size in the file; the side is kept in image_size)

    def with_variant(self, variant: str) -> ModelConfig:
        """The same model with another group downsampling variant (``antialiased``, ``plain``, ``none``)."""
        if variant not in VARIANTS:
            raise ConfigError(f"group_downsampling {variant!r} is not one of {', '.join(VARIANTS)}")
        return replace(self, group_downsampling=variant)

    def spatial_sizes(self) -> list[tuple[int, int]]:
        """(input side, output side) of every stage's feature maps."""
        sizes, side = [], self.image_size
        for stage in self.stages:
            out = (side - 1) // stage.stride + 1
            sizes.append((side, out))
            side = out
        return sizes

    def as_dict(self) -> dict[str, Any]:
        side = {"grid_size" if self.dimensions == 3 else "image_size": self.image_size}
        return {
            "name": self.name, "group": str(self.group), **side,
            "in_channels": self.in_channels, "classes": self.classes, "group_downsampling": self.group_downsampling,
            "spatial_antialias": self.spatial_antialias, "blur_sigma": self.blur_sigma, "batch_norm": self.batch_norm,
            "stages": [s.as_dict() for s in self.stages], "training": self.training.as_dict(),
        }


# -- reading -------------------------------------------------------------------------------------


def _int(mapping: Mapping[str, Any], key: str, default: int | None, where: str, minimum: int = 1) -> int:
    """:func:`int_key` with the meaning of a required model or stage key in its message."""
    return int_key(mapping, key, default, where, minimum, meaning=_STAGE_KEYS.get(key) or _MODEL_KEYS.get(key))


def subgroup_types(group: GroupSpec, rate: int) -> list[str]:
    """Subgroup types of index ``rate`` in a planar group (C_N: C_{N/R}; D_N: D_{N/R} and C_{2N/R}).

    >>> subgroup_types(GroupSpec.parse("D4"), 2)
    ['C4', 'D2']
    >>> subgroup_types(GroupSpec.parse("C4"), 3)
    []
    """
    n, types = group.n, []
    if group.order % rate:
        return []
    if group.family == "C":
        return [f"C{n // rate}"]
    m = 2 * n // rate  # order of a cyclic subgroup of index rate
    if n % m == 0:
        types.append(f"C{m}")
    if n % rate == 0:
        types.append(f"D{n // rate}")
    return sorted(types)


def _contains(group: GroupSpec, sub: SubgroupSpec) -> bool:
    name = str(sub)
    if len(name) < 2 or name[0] not in "CD" or not name[1:].isdigit():
        return False
    m = int(name[1:])
    if name[0] == "C":
        return group.n % m == 0
    return group.family == "D" and group.n % m == 0


def _available(group: GroupSpec) -> str:
    rates = [r for r in range(1, group.order + 1) if group.order % r == 0]
    return ", ".join(f"{r} ({'/'.join(subgroup_types(group, r))})" for r in rates if subgroup_types(group, r))


def _voxel_subgroup(current: GroupSpec, subgroup: SubgroupSpec | None, rate: int | None, where: str) -> SubgroupSpec:
    """The subgroup a stage of a 3-D model downsamples the point group ``current`` to (validated)."""
    allowed = VOXEL_SUBGROUPS[current.family]
    listing = ", ".join(f"{t} (rate {current.order // SubgroupSpec.parse(t).order})" for t in allowed)
    if subgroup is not None:
        if subgroup.order >= current.order or current.order % subgroup.order:
            raise ConfigError(f"{where}: {subgroup} is not a proper subgroup of {current} (the stage's group, order "
                              f"{current.order}); subgroups 3-D models can continue on: {listing}")
        if str(subgroup) not in allowed:
            raise ConfigError(f"{where}: subgroup {subgroup} of {current} has no escnn 3-D gspace for the next stage's "
                              f"convolution; subgroups 3-D models can continue on: {listing}")
        if rate is not None and rate * subgroup.order != current.order:
            raise ConfigError(f"{where}: subgroup {subgroup} has index {current.order // subgroup.order} in {current}, "
                              f"not rate {rate}")
        return subgroup
    assert rate is not None
    types = [t for t in allowed if rate * SubgroupSpec.parse(t).order == current.order]
    if len(types) != 1:
        what = f"rate {rate} fits {' and '.join(types)}: name one with subgroup" if types else f"rate {rate} fits none"
        raise ConfigError(f"{where}: {what}; subgroups 3-D models can continue on: {listing}")
    return SubgroupSpec(types[0])


def _stage(raw: Any, index: int, current: GroupSpec | None, side: int) -> tuple[StageConfig, GroupSpec | None, int]:
    """Parse stage ``index``; return it, the group after it (None if not yet known) and the output side."""
    where = f"stage {index}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a stage is a table/object with keys {', '.join(_STAGE_KEYS)}, got {raw!r}")
    name = raw.get("name", f"stage{index}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: name must be a non-empty string, got {name!r}")
    where = f"stage {index} ({name!r})"
    unknown_keys(raw, _STAGE_KEYS, where)
    channels = _int(raw, "channels", None, where)
    kernel = _int(raw, "kernel_size", 3, where)
    if kernel % 2 == 0:
        raise ConfigError(f"{where}: kernel_size must be odd (centred kernels keep rotations exact), got {kernel}")
    if kernel > side:
        raise ConfigError(f"{where}: kernel_size {kernel} is larger than the {side}x{side} maps it convolves; "
                          f"use an odd kernel_size of at most {side if side % 2 else side - 1}")
    stride = _int(raw, "stride", 1, where)
    if (side - 1) % stride:
        ok = [s for s in range(1, side) if (side - 1) % s == 0]
        raise ConfigError(
            f"{where}: stride {stride} on {side}x{side} maps does not keep the grid centre a sample point "
            f"((side - 1) must be divisible by the stride; strides that fit: {', '.join(map(str, ok))}); "
            "choose image sizes like 17 or 33 for repeated stride 2"
        )
    subgroup = None
    if "subgroup" in raw:
        try:
            subgroup = SubgroupSpec.parse(raw["subgroup"])
        except SpecError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    rate = _int(raw, "rate", None, where) if "rate" in raw else None
    after = current
    if current is not None and not current.planar and (subgroup is not None or rate is not None):
        after = GroupSpec.parse(str(_voxel_subgroup(current, subgroup, rate, where)))
    elif current is not None and (subgroup is not None or rate is not None):
        if subgroup is not None:
            if not _contains(current, subgroup):
                raise ConfigError(f"{where}: {subgroup} is not a subgroup of {current} (the stage's group); "
                                  f"rates and subgroup types of {current}: {_available(current)}")
            if rate is not None and rate * subgroup.order != current.order:
                raise ConfigError(f"{where}: subgroup {subgroup} has index {current.order // subgroup.order} in "
                                  f"{current}, not rate {rate}")
            after = GroupSpec.parse(str(subgroup))
        else:
            assert rate is not None
            types = subgroup_types(current, rate)
            if not types:
                raise ConfigError(f"{where}: rate {rate} does not fit {current} (|{current}| = {current.order}); "
                                  f"rates with a subgroup: {_available(current)}")
            after = GroupSpec.parse(types[0]) if len(types) == 1 else None
    elif current is None and subgroup is not None:
        after = GroupSpec.parse(str(subgroup))
    elif current is None and rate is not None:
        after = None
    return StageConfig(name, channels, kernel, stride, subgroup, rate), after, (side - 1) // stride + 1


def parse_gcnn_config(data: Mapping[str, Any], default_name: str = "model") -> ModelConfig:
    """Validate a G-CNN configuration mapping (``kind = "gcnn"``, the default; see :func:`gscli.models.parse_config`).

    >>> cfg = parse_gcnn_config({"group": "C4", "image_size": 9,
    ...                     "stages": [{"channels": 4, "kernel_size": 5},
    ...                                {"channels": 4, "stride": 2, "rate": 2}]})
    >>> [(s.name, s.rate) for s in cfg.stages], cfg.spatial_sizes()
    ([('stage0', None), ('stage1', 2)], [(9, 9), (9, 5)])
    >>> parse_gcnn_config({"group": "C4", "image_size": 9, "stages": [{"channels": 4, "rate": 3}]})
    Traceback (most recent call last):
    ...
    gscli.models._validate.ConfigError: stage 0 ('stage0'): rate 3 does not fit C4 (|C4| = 4); rates with a subgroup: 1 (C4), 2 (C2), 4 (C1)
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a model configuration is a table/object, got {type(data).__name__}")
    unknown_keys(data, _MODEL_KEYS, "model")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"model: name must be a non-empty string, got {name!r}")
    if "group" not in data:
        allowed = "Oh or O (cube groups, for grid_size voxels)" if "grid_size" in data else "C<N> or D<N>, e.g. D4"
        raise ConfigError(f"model: 'group' is required (the group of the lifting convolution: {allowed})")
    try:
        group = GroupSpec.parse(data["group"])
    except SpecError as exc:
        raise ConfigError(f"model: {exc}") from None
    dimensions = 3 if "grid_size" in data else 2
    if dimensions == 3:
        if "image_size" in data:
            raise ConfigError("model: give image_size (2-D images) or grid_size (3-D voxels), not both")
        if group.family not in VOXEL_SUBGROUPS:
            raise ConfigError(f"model: group {group} has no voxel model; grid_size (3-D voxels) needs group Oh or O "
                              "(the cube groups: their rotations move voxels exactly onto voxels)")
        size = _int(data, "grid_size", None, "model", minimum=3)
        if size % 2 == 0:
            raise ConfigError(f"model: grid_size must be odd so that the grid centre is a voxel (cube rotations stay "
                              f"exact), got {size}")
    else:
        if not group.planar:
            raise ConfigError(f"model: group {group} acts on 3-D voxels; give grid_size (odd side of the voxel cube) "
                              "instead of image_size, or use C<N> or D<N> for images")
        size = _int(data, "image_size", 17, "model", minimum=3)
        if size % 2 == 0:
            raise ConfigError(f"model: image_size must be odd so that the grid centre is a pixel (rotations stay "
                              f"exact), got {size}")
    variant = data.get("group_downsampling", "antialiased")
    if variant not in VARIANTS:
        raise ConfigError(f"model: group_downsampling must be one of {', '.join(VARIANTS)}, got {variant!r}")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError("model: 'stages' must be a non-empty list of stages "
                          f"(keys: {', '.join(_STAGE_KEYS)})")
    stages, current, side = [], group, size
    for index, raw in enumerate(raw_stages):
        stage, current, side = _stage(raw, index, current, side)
        stages.append(stage)
    names = [s.name for s in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"model: stage names must be unique, {', '.join(map(repr, duplicates))} repeats")
    training = data.get("training", {})
    if not isinstance(training, Mapping):
        raise ConfigError(f"training: a table/object with keys {', '.join(TRAINING_KEYS)}, got {training!r}")
    unknown_keys(training, TRAINING_KEYS, "training")
    dataset = training.get("dataset", "digits")
    if dataset not in DATASETS:
        raise ConfigError(f"training: dataset must be one of {', '.join(DATASETS)}, got {dataset!r:.80}")
    if dimensions == 3 and dataset != "digits":
        raise ConfigError(f"training: dataset {dataset!r} holds images; voxel models (grid_size) are trained and "
                          "measured on the generated tetracubes, so leave dataset out")
    if dataset == "mnist" and size < 29:
        raise ConfigError(f"training: dataset 'mnist' (28x28 digits, zero-padded) needs image_size >= 29, got {size}")
    train = TrainingConfig(
        epochs=_int(training, "epochs", 6, "training"),
        batch_size=_int(training, "batch_size", 64, "training"),
        learning_rate=float_key(training, "learning_rate", 3e-3, "training"),
        weight_decay=float_key(training, "weight_decay", 0.0, "training", positive=False),
        seed=_int(training, "seed", 0, "training", minimum=0),
        test_size=_int(training, "test_size", 500, "training"),
        dataset=dataset,
        **parse_recipe(training),
    )
    config = ModelConfig(
        name=name, group=group, stages=tuple(stages), image_size=size,
        in_channels=_int(data, "in_channels", 1, "model"), classes=_int(data, "classes", 10, "model", minimum=2),
        group_downsampling=variant, spatial_antialias=bool_key(data, "spatial_antialias", True, "model"),
        blur_sigma=float_key(data, "blur_sigma", 0.66, "model"), batch_norm=bool_key(data, "batch_norm", True, "model"),
        training=train, dimensions=dimensions,
    )
    check_memory(config, max(train.batch_size, _NOMINAL_BATCH), 4)
    return config


#: Images per batch the memory check of :func:`parse_config` assumes (eval-model's default ``--images``).
_NOMINAL_BATCH = 64


def _stage_groups(config: ModelConfig) -> list[int]:
    """|K| of the group each stage's convolution runs on (an upper bound where a rate is still ambiguous)."""
    orders, current = [], config.group.order
    for stage in config.stages:
        orders.append(current)
        if stage.subgroup is not None:
            current = stage.subgroup.order
        elif stage.rate is not None and current % stage.rate == 0:
            current //= stage.rate
    return orders


def estimate_memory(config: ModelConfig, batch: int, itemsize: int = 4) -> tuple[int, list[tuple[int, str]]]:
    """Bytes a forward and backward pass of ``batch`` images needs (an upper estimate), and its parts.

    Per stage: the conv output, batch norm and ReLU at the input side, kept for the backward pass
    (4 maps of channels x |K| x side^2 per image), and the expanded filter bank
    (channels_out |K| x channels_in |K| x kernel_size^2) with its gradient and escnn's sampled basis
    (3 copies). Returns ``(total, [(bytes, what), ...])``, the parts largest first.
    """
    parts = []
    d = config.dimensions  # 2: images, 3: voxels (sizes below are side^d, kernel_size^d)
    fields_in, group_in = config.in_channels, 1  # the lifting conv reads trivial fields
    for index, ((side, _), stage, order) in enumerate(zip(config.spatial_sizes(), config.stages, _stage_groups(config))):
        where = f"stage {index} ({stage.name!r})"
        maps = 4 * batch * stage.channels * order * side**d * itemsize
        filters = 3 * stage.channels * order * fields_in * group_in * stage.kernel_size**d * itemsize
        grid, size_key = ("x".join([str(side)] * 3) + " voxels", "grid_size") if d == 3 else \
            (f"{side}x{side} maps", "image_size")
        parts.append((maps, f"{where}: channels = {stage.channels} on {grid} ({size_key} "
                            f"{config.image_size}) of a group of order {order}, for {batch} {'grids' if d == 3 else 'images'}"))
        parts.append((filters, f"{where}: a filter bank of channels = {stage.channels} x kernel_size = "
                               f"{stage.kernel_size}^{d} x {fields_in} input fields on a group of order {order}"))
        fields_in, group_in = stage.channels, order
    parts.append((2 * batch * config.in_channels * config.image_size**d * itemsize,
                  f"the input: in_channels = {config.in_channels}, {'grid_size' if d == 3 else 'image_size'} = "
                  f"{config.image_size}"))
    parts.append((3 * fields_in * config.classes * itemsize, f"the head: classes = {config.classes}"))
    parts.sort(key=lambda p: -p[0])
    return sum(p for p, _ in parts), parts


def check_memory(config: ModelConfig, batch: int, itemsize: int = 4, available: int | None = None) -> None:
    """Refuse, before anything is allocated, a model whose estimate exceeds the memory available.

    ``available`` defaults to what the system reports (Linux ``MemAvailable``); the message names
    the configuration keys of the largest part of the estimate.
    """
    if available is None:
        from gscli._memory import available_memory

        available = available_memory()
    if available is None:
        return
    total, parts = estimate_memory(config, batch, itemsize)
    if total > available:
        raise ConfigError(
            f"model: needs about {total / 2**30:.1f} GiB ({'float32' if itemsize == 4 else 'float64'}), "
            f"only {available / 2**30:.1f} GiB is available; the largest part is {parts[0][1]} "
            f"({parts[0][0] / 2**30:.1f} GiB): make it smaller"
        )


def resolve_operators(config: ModelConfig) -> list[OperatorSpec | None]:
    """The group downsampling operator ``K>H`` of every stage (None where the stage has none).

    Stage groups follow the chain G -> H_1 -> H_2 ...; the variant ``none`` has no operators. A
    ``rate`` shared by two subgroup types is resolved by gscli's subgroup rule (least aliasing, as
    ``gscli build K --rate R``), which needs escnn.

    Raises
    ------
    ConfigError
        A stage's subgroup or rate does not fit the group it receives (naming the stage).
    """
    if config.group_downsampling == "none":
        return [None] * len(config.stages)
    operators: list[OperatorSpec | None] = []
    current = config.group
    for index, stage in enumerate(config.stages):
        where = f"stage {index} ({stage.name!r})"
        if not stage.downsamples_group:
            operators.append(None)
            continue
        if not current.planar:
            sub = _voxel_subgroup(current, stage.subgroup, stage.rate, where)
        elif stage.subgroup is not None:
            sub = stage.subgroup
            if not _contains(current, sub) or (stage.rate is not None and stage.rate * sub.order != current.order):
                raise ConfigError(f"{where}: {sub} (rate {stage.rate}) does not fit {current}; "
                                  f"rates and subgroup types of {current}: {_available(current)}")
        else:
            assert stage.rate is not None
            types = subgroup_types(current, stage.rate)
            if not types:
                raise ConfigError(f"{where}: rate {stage.rate} does not fit {current} (|{current}| = "
                                  f"{current.order}); rates with a subgroup: {_available(current)}")
            if len(types) == 1:
                sub = SubgroupSpec(types[0])
            else:
                from gscli.build import select_subgroup

                try:
                    chosen, _ = select_subgroup(current, stage.rate, None)
                except SubgroupError as exc:
                    raise ConfigError(f"{where}: {exc}") from None
                sub = SubgroupSpec(chosen.subgroup.type)
        operators.append(OperatorSpec(current, sub))
        current = GroupSpec.parse(str(sub))
    return operators
