"""Run folders of ``gscli train``: checkpoints written atomically, verified on every read.

A run folder holds::

    run.json              the manifest: format, resolved config, variant, seed, epochs, the
                          checksums of the operator files, the current checkpoint (file, sha256,
                          epoch), and once finished the weights and final metrics
    config.json           the resolved configuration (loadable by gscli; its variant is the run's)
    checkpoint-<E>.pt     the state after epoch E: model, optimizer, schedule, RNG, epoch, history
    log.jsonl             one JSON line per finished epoch
    weights.pt            the final model state_dict (when finished)
    metrics.json          the final metrics (when finished)

Every file is written to a temporary name, flushed with fsync and renamed over the old one
(:func:`_replace`); a new checkpoint gets a new name, the manifest is switched to it, and only then
is the old checkpoint removed, so a Ctrl-C or a crash at any moment leaves a manifest that names a
complete checkpoint. Ctrl-C is deferred while a checkpoint and its manifest are written.

Every ``.pt`` file of a run is read by :func:`read_checkpoint`: its bytes are hashed and compared
with the manifest's sha256 before ``torch.load(weights_only=True)`` sees them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gscli._signals import interrupt_requested, interrupts_deferred
from gscli.atomic import _fsync_folder, temporary_path
from gscli.errors import GscliError

__all__ = ["MANIFEST", "RUN_FORMAT", "RunError", "Run", "config_identity", "config_differences", "operator_digests",
           "read_checkpoint", "read_run", "check_run", "load_run_model"]

RUN_FORMAT = "gscli-run 1"
MANIFEST = "run.json"


class RunError(GscliError):
    """A run folder is missing, damaged, or does not belong to the configuration it is used with."""

    exit_code = 1


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary beside ``path``, fsync it, rename it over ``path``."""
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


def config_identity(config: Any, variant: str) -> dict[str, Any]:
    """The resolved configuration of a run: ``config`` with the run's variant, without ``training.epochs``
    (a run's length is its own setting, ``--epochs``)."""
    document = config.with_variant(variant).as_dict()
    document["training"] = {k: v for k, v in document["training"].items() if k != "epochs"}
    return document


def config_differences(theirs: dict[str, Any], ours: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configuration documents."""
    keys = sorted(set(theirs) | set(ours))
    found = []
    for key in keys:
        a, b = theirs.get(key), ours.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}")
    return found


def operator_digests(model: Any) -> list[dict[str, str | None]]:
    """The operator (``K>H``) and file checksum of every group downsampling layer of ``model``, in order."""
    return [{"operator": str(layer.spec), "checksum": layer.checksum} for layer in model.downsampling_layers()]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_checkpoint(path: Path, sha256: str) -> Any:
    """The verified content of a run's ``.pt`` file: its digest must be ``sha256`` (from the manifest)
    before ``torch.load(weights_only=True)`` reads it (on the CPU)."""
    import torch

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise RunError(f"{path}: missing; the run folder is incomplete") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot be read: {exc}") from None
    actual = _sha256(data)
    if actual != sha256:
        raise RunError(f"{path}: damaged: its sha256 is {actual.removeprefix('sha256:')[:16]}..., the run manifest "
                       f"says {str(sha256).removeprefix('sha256:')[:16]}...")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # digest matched, yet torch cannot read it: not a checkpoint torch can load safely
        raise RunError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from None


@dataclass
class Run:
    """A run folder and its manifest."""

    folder: Path
    manifest: dict[str, Any]
    resolved: dict[str, Any] | None = None  # what config.json gets (written with the first checkpoint)

    @property
    def epoch(self) -> int:
        """Epochs completed (0 before the first checkpoint)."""
        checkpoint = self.manifest.get("checkpoint")
        return int(checkpoint["epoch"]) if checkpoint else 0

    @property
    def finished(self) -> bool:
        return "weights" in self.manifest

    def checkpoint(self) -> dict[str, Any]:
        entry = self.manifest["checkpoint"]
        return read_checkpoint(self.folder / entry["file"], entry["sha256"])

    def weights(self) -> dict[str, Any]:
        """The model state_dict: the final weights, else the last checkpoint's model."""
        if self.finished:
            entry = self.manifest["weights"]
            return read_checkpoint(self.folder / entry["file"], entry["sha256"])
        return self.checkpoint()["model"]

    # -- writing --------------------------------------------------------------------------------

    def save(self, state: dict[str, Any], log_lines: list[dict[str, Any]]) -> None:
        """Write checkpoint ``state`` (after epoch ``state['epoch']``), the log and the manifest; remove
        the previous checkpoint. Ctrl-C waits until all of it is on disk, then raises."""
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        name = f"checkpoint-{int(state['epoch']):04d}.pt"
        old = self.manifest.get("checkpoint")
        with interrupts_deferred():
            self.folder.mkdir(exist_ok=True)
            if self.resolved is not None and not (self.folder / "config.json").exists():
                _replace(self.folder / "config.json", _json_bytes(self.resolved))
            _replace(self.folder / name, data)
            _replace(self.folder / "log.jsonl", "".join(json.dumps(line) + "\n" for line in log_lines).encode())
            self.manifest["checkpoint"] = {"file": name, "sha256": _sha256(data), "epoch": int(state["epoch"])}
            _replace(self.folder / MANIFEST, _json_bytes(self.manifest))
            if old and old["file"] != name:
                (self.folder / old["file"]).unlink(missing_ok=True)
            interrupted = interrupt_requested()
        if interrupted:
            raise KeyboardInterrupt

    def finish(self, model_state: dict[str, Any], metrics: dict[str, Any]) -> None:
        """Write the final weights and metrics and mark the run finished in the manifest."""
        import torch

        buffer = io.BytesIO()
        torch.save(model_state, buffer)
        data = buffer.getvalue()
        with interrupts_deferred():
            _replace(self.folder / "weights.pt", data)
            _replace(self.folder / "metrics.json", _json_bytes(metrics))
            self.manifest["weights"] = {"file": "weights.pt", "sha256": _sha256(data)}
            self.manifest["metrics"] = metrics
            _replace(self.folder / MANIFEST, _json_bytes(self.manifest))
            interrupted = interrupt_requested()
        if interrupted:
            raise KeyboardInterrupt


def read_run(folder: str | Path) -> Run:
    """The run in ``folder`` (its manifest checked for format and fields; the checkpoints are verified when read)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise RunError(f"{folder}: no such run folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{folder}: not a run folder (no {MANIFEST}; gscli train writes one)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: damaged manifest ({type(exc).__name__}: {str(exc)[:120]})") from None
    needed = ("format", "config", "variant", "seed", "epochs", "operators")
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT or any(k not in manifest for k in needed):
        raise RunError(f"{path}: not a {RUN_FORMAT} manifest")
    checkpoint = manifest.get("checkpoint")
    if not checkpoint:
        raise RunError(f"{folder}: the run has no finished epoch yet (no checkpoint)")
    entries = [checkpoint] + ([manifest["weights"]] if "weights" in manifest else [])
    if not isinstance(manifest["config"], dict) or not isinstance(manifest["operators"], list) or not all(
            isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str)
            and "/" not in e["file"] for e in entries) or not isinstance(checkpoint.get("epoch"), int):
        raise RunError(f"{path}: damaged manifest (config, operators, checkpoint or weights entries malformed)")
    return Run(folder, manifest)


def check_run(run: Run, config: Any, variant: str | None, model: Any | None = None) -> None:
    """Refuse ``run`` unless it was trained from ``config`` with ``variant`` (None: any) and, if a
    ``model`` is given, with the operator files ``model`` was built from (same checksums)."""
    name = run.manifest["variant"]
    if variant is not None and variant != name:
        raise RunError(f"{run.folder}: the run was trained with variant {name}, not {variant}")
    ours = config_identity(config, name)
    differ = config_differences(run.manifest["config"], ours)
    if differ:
        listing = ", ".join(differ[:4]) + (f" and {len(differ) - 4} more" if len(differ) > 4 else "")
        raise RunError(f"{run.folder}: the run was trained from another configuration "
                       f"({run.manifest['config'].get('name')!r}; differs in {listing})")
    if model is not None:
        digests = operator_digests(model)
        if digests != run.manifest["operators"]:
            pairs = [f"{d['operator']}" for d, e in zip(digests, run.manifest["operators"]) if d != e] or ["layers"]
            raise RunError(f"{run.folder}: the run was trained with other operator files ({', '.join(pairs)}: "
                           "checksums differ from the store's)")


def load_run_model(folder: str | Path, config: Any, variant: str | None = None, store: str | Path | None = None,
                   dtype: Any = None) -> tuple[Any, Run]:
    """Build the model of ``config`` for the run in ``folder`` and load its weights (all checks first).

    Returns the model (eval mode, CPU) and the run.
    """
    import torch

    from gscli.models._build import build_model

    run = read_run(folder)
    check_run(run, config, variant)
    model = build_model(config, run.manifest["variant"], store=store, dtype=dtype or torch.float32)
    check_run(run, config, variant, model)
    state = run.weights()
    model.train()  # checkpoints hold train-mode state dicts (escnn keeps expanded filters as buffers otherwise)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, GscliError) as exc:
        raise RunError(f"{run.folder}: its weights do not fit the model ({str(exc).splitlines()[0][:200]})") from None
    model.eval()
    return model, run


# -- training a run ----------------------------------------------------------------------------


def prepare_out(out: str | Path, resume: bool) -> Run | None:
    """Check ``out`` before anything is trained: the existing run to resume, or None for a new run.

    Refused: a file, a missing parent folder, a non-empty folder without ``resume`` (usage errors,
    exit 2), a non-empty folder that is not a run (with ``resume``).
    """
    from gscli.models._config import ConfigError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; name a run folder (new or empty, or a run with --resume)")
    if not out.exists():
        if not out.parent.is_dir():
            raise ConfigError(f"--out {str(out)!r}: folder {str(out.parent)!r} does not exist")
        return None
    if not any(out.iterdir()):
        return None
    if not resume:
        what = "holds a run" if (out / MANIFEST).exists() else "is not empty"
        raise ConfigError(f"--out {str(out)!r} {what}; pass --resume to continue it, or name a new or empty folder")
    return read_run(out)


def _device(name: str) -> Any:
    import torch

    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RunError("--device cuda: no CUDA device is available here (torch.cuda.is_available() is False); "
                           "use --device cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    from gscli.models._config import ConfigError

    raise ConfigError(f"--device {name!r}: use cpu or cuda")


def train_run(config: Any, out: str | Path, *, variant: str | None = None, seed: int | None = None,
              epochs: int | None = None, device: str = "cpu", resume: bool = False,
              store: str | Path | None = None, on_start: Any = None, on_step: Any = None,
              on_epoch: Any = None) -> dict[str, Any]:
    """Train ``config`` into the run folder ``out`` (what ``gscli train`` does); return the final metrics.

    ``variant`` (default: the config's), ``seed`` (weights, batch order, augmentation; default:
    ``training.seed``, which always seeds the train/test split) and ``epochs`` (default:
    ``training.epochs``) identify the run; ``resume`` continues the run in ``out`` from its last
    checkpoint (the three must then match it, and default to its values). Under torch.distributed
    every rank trains its shard and only rank 0 writes.

    Callbacks: ``on_start(trainer, total_epochs)``, ``on_step(step, loss)``, ``on_epoch(stats)``.
    """
    import torch

    from gscli.models._build import build_model
    from gscli.models._config import ConfigError
    from gscli.models._data import load_dataset, random_rotations
    from gscli.models._train import Trainer, _distributed, accuracy, predict

    if getattr(config, "kind", "gcnn") == "scale" or getattr(config, "dimensions", 2) != 2:
        raise ConfigError(f"{config.name}: gscli train trains planar G-CNN configurations (image_size, group C<N> "
                          "or D<N>)")
    if epochs is not None and epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {epochs}")
    rank, world = _distributed()
    target = torch.device(_device(device))
    existing = prepare_out(out, resume)
    if existing is not None:
        check_run(existing, config, variant)
        for key, given in (("seed", seed), ("epochs", epochs)):
            if given is not None and given != existing.manifest[key]:
                raise RunError(f"{existing.folder}: the run has {key} {existing.manifest[key]}, not {given}; "
                               f"resume it without --{key} or with --{key} {existing.manifest[key]}")
        variant, seed, epochs = existing.manifest["variant"], existing.manifest["seed"], existing.manifest["epochs"]
    variant = variant or config.group_downsampling
    seed = config.training.seed if seed is None else seed
    epochs = epochs or config.training.epochs
    settings = config.training.__class__(**{**config.training.__dict__, "epochs": epochs})
    train_set, test_set = load_dataset(settings.dataset, config.image_size, settings.test_size, settings.seed)
    model = build_model(config, variant, store=store, seed=seed)
    run = existing
    if run is not None:
        check_run(run, config, variant, model)
    else:
        resolved = config.with_variant(variant).as_dict()
        resolved["training"]["epochs"] = epochs
        run = Run(Path(out), {"format": RUN_FORMAT, "config": config_identity(config, variant), "variant": variant,
                              "seed": seed, "epochs": epochs, "operators": operator_digests(model),
                              "parameters": model.parameter_count(), "world_size": world, "device": target.type},
                  resolved=resolved)
    trainer = Trainer(model, train_set, settings, seed=seed, test=test_set, device=target,
                      augment=settings.rotation > 0 or settings.flip)
    if existing is not None and existing.epoch:
        trainer.load_state_dict(existing.checkpoint())
    if on_start is not None:
        on_start(trainer, epochs)
    while trainer.epoch < epochs:
        stats = trainer.run_epoch(on_step)
        if rank == 0:
            run.save(trainer.state_dict(), [s.as_dict() for s in trainer.history])
        if on_epoch is not None:
            on_epoch(stats)
    if run.finished:
        return run.manifest["metrics"]
    model = trainer.model
    model.eval()
    rotated = random_rotations(test_set.images, torch.Generator().manual_seed(settings.seed + 1))
    images, labels = test_set.images.to(target), test_set.labels.to(target)
    seconds = [s.seconds for s in trainer.history]
    metrics = {"model": config.name, "variant": variant, "seed": seed, "epochs": epochs,
               "parameters": model.parameter_count(), "train_images": len(train_set), "test_images": len(test_set),
               "test_accuracy": accuracy(predict(model, images), labels),
               "test_accuracy_rotated": accuracy(predict(model, rotated.to(target)), labels),
               "final_loss": trainer.history[-1].loss, "seconds_per_epoch": sum(seconds) / len(seconds),
               "device": target.type, "world_size": world}
    if rank == 0:
        model.train()
        run.finish({k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}, metrics)
    return metrics
