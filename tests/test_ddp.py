"""DistributedDataParallel: two CPU processes (gloo, localhost), two optimizer steps, identical replicas."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import torch

from gscli.build import build
from gscli.models import parse_config

pytest.importorskip("escnn", reason="models are built from escnn convolutions")
import torch.distributed as dist
import torch.multiprocessing as mp

from gscli.models._build import build_model

# No batch norm: DDP keeps batch statistics per process (SyncBatchNorm is another matter), and the
# single-process reference below must see the same arithmetic.
CONFIG = {"name": "ddp", "group": "C4", "image_size": 17, "batch_norm": False, "stages": [
    {"name": "lift", "channels": 2, "kernel_size": 5},
    {"name": "b1", "channels": 3, "stride": 2, "rate": 2},
    {"name": "b2", "channels": 3, "stride": 2, "rate": 2}]}
WORLD, STEPS, BATCH, LR = 2, 2, 4, 0.5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.rand(BATCH, 1, 17, 17, generator=g), torch.randint(0, 10, (BATCH,), generator=g)


def _worker(rank: int, port: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        # different initial weights per process: DDP must broadcast rank 0's at construction
        model = build_model(parse_config(CONFIG), "antialiased", store=store, seed=10 + rank)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=LR)
        for step in range(STEPS):
            x, y = _batch(rank, step)
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(ddp(x), y).backward()
            optimizer.step()
        torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("operators")
    for name in ("C4>C2", "C2>C1"):
        group, subgroup = name.split(">")
        build(group, subgroup=subgroup, out=folder)
    return folder


def test_ddp_two_processes_two_steps_replicas_identical(store: Path, tmp_path: Path) -> None:
    context = mp.spawn(_worker, args=(_free_port(), str(store), str(tmp_path)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 90
    while not context.join(timeout=2):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("DDP workers did not finish within 90 s")
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        if isinstance(states[0][key], torch.Tensor):
            assert torch.equal(states[0][key], states[1][key]), f"replicas differ in {key}"
        else:  # the downsampling layers' extra state: group, subgroup, file checksum
            assert states[0][key] == states[1][key], key

    # the same two steps in one process: rank 0's initial weights, the gradient averaged over both batches
    model = build_model(parse_config(CONFIG), "antialiased", store=store, seed=10)
    initial = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for step in range(STEPS):
        batches = [_batch(rank, step) for rank in range(WORLD)]
        optimizer.zero_grad()
        loss = sum(torch.nn.functional.cross_entropy(model(x), y) for x, y in batches) / WORLD
        loss.backward()
        optimizer.step()
    moved = 0
    for key, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            continue
        assert torch.allclose(states[0][key].double(), value.double(), rtol=1e-5, atol=1e-6), key
        moved += not torch.equal(initial[key], value)
    assert moved >= 4  # the steps changed the weights (so equal replicas are not trivially equal)

    # operators are buffers, unchanged by training and identical on both replicas
    names = {n for n, _ in model.named_parameters()}
    assert not any("operator" in n or "subgroup_nodes" in n for n in names)
    for key in [k for k in states[0] if k.endswith(("operator_down", "operator_up"))]:
        assert torch.equal(states[0][key], initial[key]) and states[0][key].dtype == torch.float64
    assert sum(k.endswith("operator_down") for k in states[0]) == 2


# -- gscli train's own loop under DistributedDataParallel ---------------------------------------

# 8 training digits (1789 of 1797 held out), one global batch of 8 per step: 4 per rank; SGD without
# momentum; random rotations up to 30 degrees, drawn for the global batch and sliced per rank.
RUN_CONFIG = {**CONFIG, "name": "ddp-run", "training": {
    "epochs": 2, "batch_size": 8, "test_size": 1789, "optimizer": "sgd", "momentum": 0.0, "learning_rate": 0.5,
    "schedule": "constant", "rotation": 30}}


def _train_worker(rank: int, port: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        from gscli.models._run import train_run

        seen = {}
        train_run(parse_config(RUN_CONFIG), Path(out) / "run", store=store,
                  on_start=lambda trainer, epochs: seen.update(trainer=trainer))
        torch.save(seen["trainer"].model.state_dict(), Path(out) / f"train-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gscli_train_loop_data_parallel_equals_one_process_on_the_combined_batch(store: Path, tmp_path: Path) -> None:
    from gscli.models._run import read_run, train_run

    context = mp.spawn(_train_worker, args=(_free_port(), str(store), str(tmp_path)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 300  # about 20 s on an idle 2-core machine; the margin is for loaded ones
    while not context.join(timeout=2):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("DDP workers did not finish within 300 s")
    states = [torch.load(tmp_path / f"train-rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for key in states[0]:  # replicas identical after two steps
        if isinstance(states[0][key], torch.Tensor):
            assert torch.equal(states[0][key], states[1][key]), f"replicas differ in {key}"
    run = read_run(tmp_path / "run")  # rank 0 wrote the run, nobody left temporaries
    assert run.finished and run.manifest["world_size"] == 2
    assert not [p for p in (tmp_path / "run").iterdir() if ".tmp-" in p.name]
    assert _close(run.weights(), states[0])

    # one process, the same command: every step sees the combined batch (both ranks' slices)
    train_run(parse_config(RUN_CONFIG), tmp_path / "single", store=store)
    single = read_run(tmp_path / "single").weights()
    assert _close(single, states[0])
    # negative control: one step fewer (one epoch) is far from it, so the agreement above is not loose
    train_run(parse_config(RUN_CONFIG), tmp_path / "short", store=store, epochs=1)
    assert not _close(read_run(tmp_path / "short").weights(), states[0])


def _close(a: dict, b: dict) -> bool:
    return all(torch.allclose(a[k].double(), b[k].double(), rtol=1e-5, atol=1e-6)
               for k in a if isinstance(a[k], torch.Tensor))
