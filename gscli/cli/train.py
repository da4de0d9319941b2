"""``gscli train``: train a G-CNN configuration into a run folder (checkpointed, resumable)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gscli.cli._app import main
from gscli.cli._common import SEED, folder_option_value, json_option, print_json, stderr_console, stdout_console
from gscli.models._config import VARIANTS
from gscli.store import STORE_ENV


@main.command("train")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="RUN_DIR",
              help="Run folder: new or empty (created), or an earlier run with --resume.")
@click.option("--variant", type=click.Choice(VARIANTS), default=None,
              help="Group downsampling variant  [default: the config's group_downsampling]")
@click.option("--seed", type=SEED, default=None,
              help="Seed of the weights, batch order and augmentation  [default: the config's training.seed, "
                   "which always seeds the train/test split]")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs to train  [default: the config's training.epochs]")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where to train (cuda: the GPU of LOCAL_RANK under torchrun).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads of torch (torch.set_num_threads).")
@click.option("--resume", is_flag=True, help="Continue the run in RUN_DIR from its last checkpoint (a missing or "
                                              "empty RUN_DIR starts a new run).")
@click.option("--store", type=str, envvar=STORE_ENV, show_envvar=True, callback=folder_option_value, metavar="DIR",
              help="Operator store (missing operators are built into it)  [default: operators]")
@json_option
def train_command(config: Path, out: Path, variant: str | None, seed: int | None, epochs: int | None, device: str,
                  threads: int | None, resume: bool, store: str | None, as_json: bool) -> None:
    """Train the G-CNN of CONFIG (.toml or .json) with its [training] recipe; write the run to RUN_DIR.

    The run folder holds run.json (manifest: resolved config, variant, seed, the checksums of the
    operator files, the current checkpoint and its sha256), config.json, checkpoint-<E>.pt (model,
    optimizer, schedule and RNG after epoch E; written atomically every epoch), log.jsonl (one line
    per epoch), and when done weights.pt and metrics.json (test accuracy on upright and on randomly
    rotated test digits, seconds per epoch).

    Ctrl-C keeps the last complete checkpoint and exits 130; --resume continues from it and ends
    with the same weights as an uninterrupted run (same machine). The same seed gives the same run.
    Evaluate a run with: gscli eval-model CONFIG --weights RUN_DIR.

    Data parallel: torchrun --nproc_per_node=N -m gscli train CONFIG --out RUN_DIR [--device cuda]
    trains with DistributedDataParallel (gloo on CPU, nccl on CUDA); each step's batch is split
    over the ranks; only rank 0 writes.

    \b
    Examples:
      gscli train configs/p4-mnist.toml --out runs/p4 --epochs 3
      gscli train configs/c24-mnist.toml --out runs/c24-plain --variant plain --seed 1 --threads 1
      gscli train configs/c24-mnist.toml --out runs/c24-plain --resume
    """
    import torch

    from gscli.models import load_config
    from gscli.models._run import _device, prepare_out

    parsed = load_config(config)
    prepare_out(out, resume)  # bad --out before anything heavy (again, per rank, inside train_run)
    _device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    rank = int(os.environ.get("RANK", "0"))
    err = stderr_console()
    note = click.get_current_context().meta
    note["gscli.interrupted"] = f"the run folder {out} keeps its last complete checkpoint; continue with --resume"
    try:
        metrics = _train(parsed, out, variant, seed, epochs, device, resume, store, err if rank == 0 else None)
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    if rank != 0:
        return
    if as_json:
        print_json({"run": str(out), **metrics})
        return
    console = stdout_console()
    console.print(f"{metrics['model']} ({metrics['variant']}, seed {metrics['seed']}): {metrics['epochs']} epochs, "
                  f"{metrics['parameters']} parameters, {metrics['seconds_per_epoch']:.1f} s/epoch")
    console.print(f"test accuracy {metrics['test_accuracy']:.4f} upright, {metrics['test_accuracy_rotated']:.4f} "
                  f"randomly rotated ({metrics['test_images']} digits)")
    console.print(f"run folder: {out}")


def _train(parsed, out, variant, seed, epochs, device, resume, store, err):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from gscli.models._run import train_run

    if err is None:  # other ranks: silent
        return train_run(parsed, out, variant=variant, seed=seed, epochs=epochs, device=device, resume=resume,
                         store=store)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}"), TimeRemainingColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("training", total=None, loss="-", acc="-")
        state = {"steps": 1, "epochs": 1, "epoch": 0}

        def on_start(trainer, total):
            state.update(steps=trainer.steps_per_epoch, epochs=total, epoch=trainer.epoch)
            bar.update(task, total=total * trainer.steps_per_epoch, completed=trainer.epoch * trainer.steps_per_epoch,
                       description=f"epoch {trainer.epoch + 1}/{total}")
            if trainer.epoch:
                err.print(f"[dim]resuming after epoch {trainer.epoch}/{total}[/]")

        def on_step(step, loss):
            bar.update(task, advance=1, loss=f"{loss:.3f}")

        def on_epoch(stats):
            test = "-" if stats.test_accuracy is None else f"{stats.test_accuracy:.4f}"
            bar.update(task, acc=f"{stats.accuracy:.3f}",
                       description=f"epoch {min(stats.epoch + 1, state['epochs'])}/{state['epochs']}")
            err.print(f"[dim]epoch {stats.epoch}/{state['epochs']}: loss {stats.loss:.4f}, train acc "
                      f"{stats.accuracy:.4f}, test acc {test}, {stats.seconds:.1f} s[/]")

        return train_run(parsed, out, variant=variant, seed=seed, epochs=epochs, device=device, resume=resume,
                         store=store, on_start=on_start, on_step=on_step, on_epoch=on_epoch)
