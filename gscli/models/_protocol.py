r"""Accuracy and equivariance metrics of the group downsampling paper's MNIST protocol (any image classifier).

For a classifier f (images ``(n, c, s, s)`` with odd s -> logits), test images x and labels y:

* **Acc_no-aug** -- accuracy on the upright test set (:func:`accuracy_no_aug`).
* **Acc_orbit** -- accuracy averaged over a set of rotations applied to the whole test set
  (:func:`orbit_accuracy`): every rotation of C24 (15-degree steps, bilinear interpolation about the
  grid centre, exact ``rot90`` at multiples of 90 degrees), or the exact grid transforms: the four
  90-degree rotations, and with ``flips`` also the four reflections of D4 (:func:`exact_transforms`).
* **Acc_loc** -- accuracy on the test set rotated by angles drawn uniformly from
  [-60, 60] degrees (:func:`local_accuracy`; ``draws`` rotated copies per image, seeded).
* **Equivariance error** of the logits (:func:`equivariance_error`): the mean over test images x
  and exact grid transforms g other than the identity (the 90-degree rotations; with ``flips``
  also the reflections) of

  .. math:: \|f(g x) - f(x)\|_2 / \|f(x)\|_2 .

  The logits of an invariant classifier do not move, so this is 0 up to float rounding for a
  G-CNN whose last group contains g, and measures how much invariance the model lost otherwise.

All of them take the model in eval mode, batch the forward passes and work on the model's device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from gscli.models._data import rotate

__all__ = ["C24_ANGLES", "accuracy_no_aug", "equivariance_error", "exact_transforms", "local_accuracy", "protocol_metrics",
           "orbit_accuracy", "rotate_exact"]

#: Every rotation of C24, in degrees.
C24_ANGLES = tuple(15 * k for k in range(24))

Transform = Callable[[Tensor], Tensor]


def rotate_exact(images: Tensor, degrees: float) -> Tensor:
    """``images`` rotated counter-clockwise by ``degrees`` about the grid centre: ``torch.rot90`` at
    multiples of 90 (exact), bilinear interpolation otherwise (as :func:`gscli.models._data.rotate`)."""
    quarter, rest = divmod(float(degrees), 90.0)
    if rest == 0.0:
        return torch.rot90(images, int(quarter) % 4, dims=(-2, -1))
    angles = torch.full((images.shape[0],), math.radians(degrees), dtype=torch.float64, device=images.device)
    return rotate(images, angles.to(images.dtype))


def exact_transforms(flips: bool) -> dict[str, Transform]:
    """The grid transforms that move pixels onto pixels: the identity and rotations by 90, 180, 270
    degrees, and with ``flips`` the reflections (left-right flip composed with each rotation)."""
    found: dict[str, Transform] = {}
    for k in range(4):
        found[f"r{90 * k}"] = lambda x, k=k: torch.rot90(x, k, dims=(-2, -1))
    if flips:
        for k in range(4):
            found[f"f r{90 * k}"] = lambda x, k=k: torch.rot90(x, k, dims=(-2, -1)).flip(-1)
    return found


@torch.no_grad()
def _logits(model: nn.Module, images: Tensor, batch_size: int) -> Tensor:
    model.eval()
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else images.device
    dtype = parameter.dtype if parameter is not None else images.dtype
    return torch.cat([model(images[i : i + batch_size].to(device, dtype)).double().cpu()
                      for i in range(0, len(images), batch_size)])


def _accuracy(logits: Tensor, labels: Tensor) -> float:
    return float((logits.argmax(dim=1) == labels.cpu()).double().mean())


def accuracy_no_aug(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Accuracy on the upright images."""
    return _accuracy(_logits(model, images, batch_size), labels)


def orbit_accuracy(model: nn.Module, images: Tensor, labels: Tensor,
                   transforms: Sequence[float] | dict[str, Transform] = C24_ANGLES, batch_size: int = 256) -> float:
    """Accuracy averaged over the test set transformed by every element of ``transforms``: angles in
    degrees (:func:`rotate_exact`), or named transforms (:func:`exact_transforms`)."""
    moves = list(transforms.values()) if isinstance(transforms, dict) else \
        [lambda x, a=a: rotate_exact(x, a) for a in transforms]
    return sum(_accuracy(_logits(model, move(images), batch_size), labels) for move in moves) / len(moves)


def local_accuracy(model: nn.Module, images: Tensor, labels: Tensor, max_degrees: float = 60.0, draws: int = 4,
                   seed: int = 0, batch_size: int = 256) -> float:
    """Accuracy on ``draws`` copies of the test set, each image rotated by an angle drawn uniformly
    from [-max_degrees, max_degrees] (bilinear), seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(draws):
        angles = (torch.rand(len(images), generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(max_degrees)
        moved = rotate(images, angles.to(images.device, images.dtype))
        total += _accuracy(_logits(model, moved, batch_size), labels)
    return total / draws


def equivariance_error(model: nn.Module, images: Tensor, flips: bool, batch_size: int = 256) -> float:
    """Mean over images and exact grid transforms g other than the identity of
    ``||f(g x) - f(x)|| / ||f(x)||`` (logits, float64 norms)."""
    base = _logits(model, images, batch_size)
    norms = torch.linalg.vector_norm(base, dim=1)
    errors = []
    for name, move in exact_transforms(flips).items():
        if name == "r0":
            continue
        moved = _logits(model, move(images), batch_size)
        errors.append(torch.linalg.vector_norm(moved - base, dim=1) / norms)
    return float(torch.stack(errors).mean())


def protocol_metrics(model: nn.Module, images: Tensor, labels: Tensor, flips: bool, draws: int = 2, seed: int = 0,
                     batch_size: int = 256) -> dict[str, float]:
    """All metrics of the protocol at once, each transformed test set run through the model once.

    Returns ``acc_no_aug``, ``acc_orbit_c24``, ``acc_orbit_exact`` (8 transforms, flips included),
    ``acc_loc`` (``draws`` copies) and ``equivariance_error`` (rotations, and reflections if
    ``flips``): the values of the functions above.
    """
    exact = {name: _logits(model, move(images), batch_size) for name, move in exact_transforms(True).items()}
    by_angle = {a: exact[f"r{a}"] if a % 90 == 0 else _logits(model, rotate_exact(images, a), batch_size)
                for a in C24_ANGLES}
    base = exact["r0"]
    norms = torch.linalg.vector_norm(base, dim=1)
    moved = [v for k, v in exact.items() if k != "r0" and (flips or k.startswith("r"))]
    errors = torch.stack([torch.linalg.vector_norm(v - base, dim=1) / norms for v in moved])
    return {"acc_no_aug": _accuracy(base, labels),
            "acc_orbit_c24": sum(_accuracy(v, labels) for v in by_angle.values()) / len(by_angle),
            "acc_orbit_exact": sum(_accuracy(v, labels) for v in exact.values()) / len(exact),
            "acc_loc": local_accuracy(model, images, labels, draws=draws, seed=seed, batch_size=batch_size),
            "equivariance_error": float(errors.mean())}
