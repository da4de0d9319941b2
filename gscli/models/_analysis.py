r"""How equivariance errors propagate through a G-CNN with group downsampling, on real images.

For every exact grid transform g of G (90-degree rotations and flips that lie in G, other than the
identity) and every block of the model, on a batch of digits x:

* **equivariance** -- the block's features F are first mapped back to regular fields of G with
  the reconstruction operators U of the group downsampling layers they passed (identity while on
  G; see :meth:`GroupCNN.lift`); then

  .. math:: e_{eq}(g) = \|F_G(g x) - (g \cdot F_G)(x)\| / \|F_G(x)\|,

  where :math:`g \cdot` is escnn's action on regular G-fields (move the grid, permute the fibers).
  For g in the block's group K it is float rounding; for g outside K it measures how far the
  K-features are from carrying a G-action (aliasing).
* **invariance** -- the same relative error of the invariant pooling the head uses (max over the
  group, mean over space), and of the **logits**.

Norms are Frobenius norms over the whole batch, computed in float64 from the model's outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gscli.checks import worst
from gscli.errors import printable
from gscli.groups import is_signed_permutation, planar_element_name
from gscli.models import _escnn_nn
from gscli.models._build import build_model
from gscli.models._builder import GroupCNN
from gscli.models._config import VARIANTS, ConfigError, ModelConfig, check_memory
from gscli.models._data import load_dataset, random_rotations
from gscli.models._train import accuracy, predict, train

__all__ = [
    "INVARIANCE_TOL",
    "ErrorReport",
    "LayerErrors",
    "Transform",
    "VariantErrors",
    "grid_transforms",
    "prediction_invariance",
    "propagate_errors",
    "variant_errors",
]

#: Relative logit invariance error allowed for transforms in the last stage's group, by dtype.
#: Measured: at most 8.4e-8 (float32) and 1.6e-8 (float64: escnn samples its kernel bases in float32),
#: over seeds 0-9 of the test models; the margins cover deeper and wider models.
INVARIANCE_TOL = {torch.float32: 1e-4, torch.float64: 1e-6}


@dataclass(frozen=True)
class Transform:
    """An exact grid transform: an element of G (index in escnn's order) and what it does to the plane."""

    index: int
    name: str
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "description": self.description}


@dataclass
class LayerErrors:
    """Errors of one block's output, per transform name."""

    name: str
    kind: str
    group: str
    shape: tuple[int, int, int]  # (fields, |K|, side)
    inside: tuple[str, ...]  # transforms that lie in the block's group K
    equivariance: dict[str, float]
    invariance: dict[str, float]

    def worst(self, which: str, inside: bool) -> float | None:
        """Largest ``which`` error (``equivariance`` or ``invariance``) over transforms in / outside K."""
        values = [v for k, v in getattr(self, which).items() if (k in self.inside) == inside]
        return worst(*values) if values else None

    def mean(self, which: str) -> float:
        """Mean ``which`` error over all transforms."""
        values = list(getattr(self, which).values())
        return float(np.mean(values)) if values else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "group": self.group, "fields": self.shape[0],
                "group_order": self.shape[1], "side": self.shape[2], "transforms_in_group": list(self.inside),
                "equivariance": self.equivariance, "invariance": self.invariance}


@dataclass
class VariantErrors:
    """The analysis of one model variant (``antialiased``, ``plain`` or ``none``)."""

    variant: str
    groups: tuple[str, ...]
    parameters: int
    activations: int
    layers: list[LayerErrors]
    logits: dict[str, float]
    final_inside: tuple[str, ...]
    tolerance: float
    training: dict[str, Any] | None = None

    @property
    def logits_inside(self) -> float | None:
        """Largest logit invariance error over transforms in the last stage's group (theory: 0)."""
        values = [v for k, v in self.logits.items() if k in self.final_inside]
        return worst(*values) if values else None

    @property
    def logits_outside(self) -> float | None:
        """Mean logit invariance error over the other transforms of G."""
        values = [v for k, v in self.logits.items() if k not in self.final_inside]
        return float(np.mean(values)) if values else None

    @property
    def ok(self) -> bool:
        """Whether the logits are invariant (within ``tolerance``) where theory says they are."""
        inside = self.logits_inside
        return inside is None or inside <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "groups": list(self.groups), "parameters": self.parameters,
                "activations_per_image": self.activations, "training": self.training,
                "logits_invariance": self.logits, "transforms_in_final_group": list(self.final_inside),
                "logits_invariance_in_final_group_max": self.logits_inside,
                "logits_invariance_outside_mean": self.logits_outside, "tolerance": self.tolerance, "ok": self.ok,
                "layers": [layer.as_dict() for layer in self.layers]}


@dataclass
class ErrorReport:
    """Everything :func:`propagate_errors` measured, for tables, JSON and plots."""

    model: str
    group: str
    weights: str
    seed: int
    images: int
    image_size: int
    dtype: str
    transforms: list[Transform]
    variants: list[VariantErrors] = field(default_factory=list)
    dimensions: int = 2

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.variants)

    def failures(self) -> list[str]:
        """One sentence per variant whose logits are not invariant where theory says they are."""
        return [f"{v.variant}: logits change by {v.logits_inside:.2e} (relative) under transforms of its final "
                f"group {v.groups[-1]} ({', '.join(v.final_inside)}), above {v.tolerance:.0e}"
                for v in self.variants if not v.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "group": self.group, "weights": self.weights, "seed": self.seed,
                "images": self.images, "image_size": self.image_size, "dimensions": self.dimensions,
                "dtype": self.dtype, "ok": self.ok,
                "transforms": [t.as_dict() for t in self.transforms],
                "variants": [v.as_dict() for v in self.variants]}


def _describe(matrix: np.ndarray) -> str:
    angle = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    if np.linalg.det(matrix) > 0:
        return f"rotation by {round(angle) % 360} deg"
    return f"reflection, axis at {round(angle / 2) % 180} deg"


def _is_voxel(model: Any) -> bool:
    return getattr(model.config, "dimensions", 2) == 3


def grid_transforms(model: GroupCNN) -> list[Transform]:
    """The elements of G (other than the identity) that map the pixel (or voxel) grid onto itself.

    Voxel models (O, O_h): every element but the identity, i.e. the 23 cube rotations, 47 with the
    inversion; each is named by its action on R^3 (escnn's ``basespace_action``).
    """
    if _is_voxel(model):
        from gscli import _escnn, _gspaces3d
        from gscli.groups import rotation_name

        actions = _escnn.base_actions(_gspaces3d.gspace_of_group(model.config.group.family))
        return [Transform(i, rotation_name(a), f"element {i} of {model.config.group}")
                for i, a in enumerate(actions) if not np.allclose(a, np.eye(3))]
    gspace = model.input_type.gspace
    n = model.config.group.n
    found = []
    for index, element in enumerate(gspace.fibergroup.elements):
        matrix = np.asarray(gspace.basespace_action(element), dtype=np.float64)
        if is_signed_permutation(matrix) and not np.allclose(matrix, np.eye(2)):
            found.append(Transform(index, planar_element_name(index, n), _describe(matrix)))
    return found


def _relative(a: Tensor, b: Tensor) -> float:
    a64, b64 = a.detach().to(torch.float64), b.detach().to(torch.float64)
    norm = float(torch.linalg.vector_norm(b64))
    return float(torch.linalg.vector_norm(a64 - b64)) / norm if norm > 0 else float("nan")


def _transform(field_type: Any, tensor: Tensor, element: Any) -> Tensor:
    out = field_type.transform(tensor.detach(), element)
    return torch.as_tensor(out, dtype=tensor.dtype)


def _move_input(model: Any, x: Tensor, index: int) -> Tensor:
    """Element ``index`` of G applied to the model's input (exact grid transform)."""
    if _is_voxel(model):
        return model.transform(x, index)
    return _transform(model.input_type, x, list(model.input_type.gspace.fibergroup.elements)[index])


def _move_fields(model: Any, features: Tensor, fields: int, index: int) -> Tensor:
    """Element ``index`` of G applied to regular G-fields ``(batch, fields*|G|, *grid)``: grid and fibers."""
    if _is_voxel(model):
        return model.transform_fields(features, index)
    gspace = model.input_type.gspace
    g_type = _escnn_nn.enn().FieldType(gspace, [gspace.regular_repr] * fields)
    return _transform(g_type, features, list(gspace.fibergroup.elements)[index])


@torch.no_grad()
def prediction_invariance(model: GroupCNN, images: Tensor, transforms: Sequence[Transform],
                          batch_size: int = 256) -> tuple[dict[str, float], float]:
    """Logit invariance error per transform, and the fraction of images whose predicted class is the
    same under every transform (and the identity).

    Returns
    -------
    errors : dict
        ``{transform name: ||logits(g x) - logits(x)|| / ||logits(x)||}`` over all ``images``.
    agreement : float
        Fraction of images with one predicted class for x and all g x.
    """
    model.eval()
    dtype = next(model.parameters()).dtype
    x = images.to(dtype)

    def logits_of(batch: Tensor) -> Tensor:
        return torch.cat([model(batch[i : i + batch_size]) for i in range(0, len(batch), batch_size)])

    base = logits_of(x)
    same = torch.ones(len(x), dtype=torch.bool)
    errors = {}
    for t in transforms:
        moved = logits_of(_move_input(model, x, t.index))
        errors[t.name] = _relative(moved, base)
        same &= moved.argmax(dim=1) == base.argmax(dim=1)
    return errors, float(same.to(torch.float64).mean())


@torch.no_grad()
def variant_errors(model: GroupCNN, images: Tensor, transforms: Sequence[Transform]) -> VariantErrors:
    """Per-block and logit errors of ``model`` (in eval mode) on ``images`` under ``transforms``."""
    model.eval()
    dtype = next(model.parameters()).dtype
    x = images.to(dtype)
    traced, _, logits = model.trace(x)
    lifted = [model.lift(t.tensor, i) for i, t in enumerate(traced)]
    equivariance: list[dict[str, float]] = [{} for _ in traced]
    invariance: list[dict[str, float]] = [{} for _ in traced]
    logit_errors: dict[str, float] = {}
    for transform in transforms:
        traced_g, _, logits_g = model.trace(_move_input(model, x, transform.index))
        for i, (t, t_g) in enumerate(zip(traced, traced_g)):
            expected = _move_fields(model, lifted[i], t.block.fields, transform.index)
            equivariance[i][transform.name] = _relative(model.lift(t_g.tensor, i), expected)
            invariance[i][transform.name] = _relative(model.pool(t_g.tensor, t.block), model.pool(t.tensor, t.block))
        logit_errors[transform.name] = _relative(logits_g, logits)
    layers = []
    for i, t in enumerate(traced):
        b = t.block
        inside = tuple(tr.name for tr in transforms if tr.index in b.nodes_in_g)
        layers.append(LayerErrors(b.name, b.kind, str(b.group), (b.fields, b.group.order, b.side), inside,
                                  equivariance[i], invariance[i]))
    final = model.block_specs[-1]
    groups = tuple([str(model.config.group)] + [str(op.subgroup) for op in model.operators if op is not None])
    return VariantErrors(
        model.config.group_downsampling, groups, model.parameter_count(), model.activation_count(), layers,
        logit_errors, tuple(tr.name for tr in transforms if tr.index in final.nodes_in_g),
        INVARIANCE_TOL.get(dtype, 1e-4),
    )


def propagate_errors(
    config: ModelConfig,
    *,
    weights: str = "random",
    variants: Sequence[str] = VARIANTS,
    images: int = 64,
    seed: int = 0,
    store: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    log: Callable[[str], None] | None = None,
    run: str | Path | None = None,
) -> ErrorReport:
    """Measure per-block equivariance and logit invariance errors for each variant of ``config``.

    Parameters
    ----------
    config : ModelConfig
        The architecture (its ``group_downsampling`` is ignored: every entry of ``variants`` is built).
    weights : {"random", "trained"}
        ``random``: seeded initial weights, identical for ``antialiased`` and ``plain`` (the
        downsampling layers hold no parameters; ``none`` has other shapes). ``trained``: each
        variant trained separately with ``config.training`` on randomly rotated training digits,
        then tested on randomly rotated test digits (accuracy in ``training``).
    images : int
        Number of upright test digits the errors are measured on.
    seed : int
        Seed of the random weights (trained weights use ``config.training.seed``).
    store : path, optional
        Operator store (missing operators are built into it).
    dtype : torch.dtype
        float32 (default) or float64.
    log : callable, optional
        Receives progress lines.
    run : path, optional
        A run folder of ``gscli train`` (``weights`` is then ignored): its one variant, with its
        weights, is measured, after checking that it was trained from ``config`` with the operator
        files of ``store`` and that its checkpoint is intact (:mod:`gscli.models._run`).

    Returns
    -------
    ErrorReport
    """
    trained_run = None
    if run is not None:
        from gscli.models._run import check_run, read_run

        trained_run = read_run(run)
        asked = list(variants)  # every variant (the default) means: the run's
        check_run(trained_run, config, None if asked == list(VARIANTS) else ",".join(asked))
        variants, weights = [trained_run.manifest["variant"]], "run"
    elif weights not in ("random", "trained"):
        raise ConfigError(f"weights must be 'random' or 'trained', got {weights!r}")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ConfigError(f"variants must be a non-empty selection of {', '.join(VARIANTS)}, got {list(variants)}")
    settings = config.training
    check_memory(config, max(images, settings.batch_size if weights == "trained" else 1),
                 torch.empty((), dtype=dtype).element_size())
    voxels = config.dimensions == 3
    if voxels:  # tetracubes, already at random exact cube rotations
        from gscli.models._polycubes import load_voxel_data

        # 8 tetracubes for O, 7 (mirror pair merged) for Oh; a config with another class count is refused
        train_set, test_set = load_voxel_data(config, test_size=settings.test_size, seed=settings.seed)
        rotated_test = test_set.images
    else:
        if config.image_size < 9:
            raise ConfigError(f"{printable(config.name)}: the digits are 8x8 and are resized up; image_size must be "
                              f">= 9, got {config.image_size}")
        train_set, test_set = load_dataset(settings.dataset, config.image_size, settings.test_size, settings.seed)
        rotated_test = random_rotations(test_set.images, torch.Generator().manual_seed(settings.seed + 1))
    if not 0 < images <= len(test_set):
        raise ConfigError(f"images must lie in 1..{len(test_set)}, got {images}")
    batch = test_set.images[:images]
    report: ErrorReport | None = None
    reference: dict[str, Tensor] | None = None
    for variant in variants:
        if trained_run is not None:
            from gscli.models._run import load_run_model

            model, _ = load_run_model(trained_run.folder, config, variant, store=store, dtype=dtype)
            seed = int(trained_run.manifest["seed"])
        else:
            model = build_model(config, variant, store=store, seed=seed if weights == "random" else settings.seed,
                                dtype=dtype)
        if report is None:
            report = ErrorReport(config.name, str(config.group), weights,
                                 seed if weights in ("random", "run") else settings.seed,
                                 images, config.image_size, str(dtype).removeprefix("torch."), grid_transforms(model),
                                 dimensions=config.dimensions)
        training = None
        if weights == "random" and variant != "none":
            if reference is None:
                reference = model.state_dict()
            else:
                model.load_state_dict(reference)  # the same weights for antialiased and plain
        if weights == "trained":
            if log is not None:
                log(f"training {config.name} ({variant}) for {settings.epochs} epochs on {len(train_set)} digits")
            result = train(model, train_set, settings, rotate=not voxels, log=log)
            if voxels:  # batch-norm statistics of the final weights (see VoxelGCNN.calibrate)
                model.calibrate(train_set.images, settings.batch_size)
            training = {"epochs": settings.epochs, "steps": result.steps, "seconds": round(result.seconds, 2),
                        "losses": list(result.losses),
                        "test_accuracy_rotated": accuracy(predict(model, rotated_test), test_set.labels),
                        "test_accuracy_upright": accuracy(predict(model, test_set.images), test_set.labels)}
        if trained_run is not None:
            history = trained_run.manifest.get("metrics") or {}
            training = {"run": str(trained_run.folder), "epochs": trained_run.epoch,
                        "finished": trained_run.finished,
                        "seconds": round(float(history.get("seconds_per_epoch", 0.0)) * trained_run.epoch, 2),
                        "test_accuracy_rotated": accuracy(predict(model, rotated_test), test_set.labels),
                        "test_accuracy_upright": accuracy(predict(model, test_set.images), test_set.labels)}
        if log is not None:
            log(f"measuring {variant} on {images} {'voxel grids' if voxels else 'digits'} under "
                f"{len(report.transforms)} grid transforms")
        errors = variant_errors(model, batch, report.transforms)
        errors.training = training
        report.variants.append(errors)
    assert report is not None
    return report
