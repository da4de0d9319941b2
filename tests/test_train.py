"""gscli train: run folders, checkpoints, resume, refusals, Ctrl-C, the recipe keys, eval-model --weights RUN_DIR."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

from gscli.cli import main
from gscli.models import ConfigError, parse_config

pytest.importorskip("escnn", reason="models are built from escnn convolutions")

from gscli.models._run import load_run_model, read_run, train_run  # noqa: E402

# C4 on 9x9 digits, 97 training digits (2 steps per epoch), 1700 test digits
TINY = {"name": "tiny", "group": "C4", "image_size": 9, "stages": [
    {"name": "lift", "channels": 3, "kernel_size": 3},
    {"name": "b1", "channels": 4, "stride": 2, "rate": 2}],
    "training": {"epochs": 2, "batch_size": 64, "learning_rate": 1e-2, "test_size": 1700, "schedule": "onecycle",
                 "rotation": 30, "flip": True, "label_smoothing": 0.1}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gscli.build import build

    folder = tmp_path_factory.mktemp("operators")
    build("C4", subgroup="C2", out=folder)
    return folder


def _write(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document))
    return path


def _invoke(*args: str, store: Path):
    return CliRunner().invoke(main, [*args, "--store", str(store)], catch_exceptions=False)


def _weights(folder: Path) -> dict:
    return read_run(folder).weights()


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k]
                                        for k in a)


class _Stop(Exception):
    pass


def test_resume_after_one_epoch_gives_the_uninterrupted_weights_bit_for_bit(store: Path, tmp_path: Path) -> None:
    config = parse_config(TINY)
    full = train_run(config, tmp_path / "full", store=store)
    again = train_run(config, tmp_path / "again", store=store)
    assert _equal(_weights(tmp_path / "full"), _weights(tmp_path / "again"))  # same seed, same run
    assert full == {**again, "seconds_per_epoch": full["seconds_per_epoch"]}

    def stop_after_first(stats):
        if stats.epoch == 1:
            raise _Stop

    with pytest.raises(_Stop):
        train_run(config, tmp_path / "cut", store=store, on_epoch=stop_after_first)
    cut = read_run(tmp_path / "cut")
    assert cut.epoch == 1 and not cut.finished
    assert len((tmp_path / "cut" / "log.jsonl").read_text().splitlines()) == 1
    resumed = train_run(config, tmp_path / "cut", store=store, resume=True)
    assert _equal(_weights(tmp_path / "cut"), _weights(tmp_path / "full"))
    assert resumed["test_accuracy"] == full["test_accuracy"]
    log = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in log] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == [
        "checkpoint-0002.pt", "config.json", "log.jsonl", "metrics.json", "run.json", "weights.pt"]

    # negative control: another seed gives other weights, so equality above is not trivial
    train_run(config, tmp_path / "seed1", seed=1, store=store)
    assert not _equal(_weights(tmp_path / "seed1"), _weights(tmp_path / "full"))
    # and training moved the weights away from the seeded initial ones
    from gscli.models._build import build_model

    initial = build_model(config, store=store, seed=0).state_dict()
    assert not _equal(initial, _weights(tmp_path / "full"))


def test_train_command_and_eval_model_round_trip(store: Path, tmp_path: Path) -> None:
    config = _write(tmp_path / "tiny.json", TINY)
    out = tmp_path / "run"
    r = _invoke("train", str(config), "--out", str(out), "--epochs", "1", "--json", "--threads", "1", store=store)
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout)
    assert metrics["epochs"] == 1 and metrics["variant"] == "antialiased" and 0 <= metrics["test_accuracy"] <= 1
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["operators"][0]["operator"] == "C4>C2" and manifest["operators"][0]["checksum"].startswith("sha256:")
    assert parse_config(json.loads((out / "config.json").read_text())).as_dict()["training"]["epochs"] == 1

    r = _invoke("eval-model", str(config), "--weights", str(out), "--json", "--images", "8", store=store)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["weights"] == "run" and [v["variant"] for v in report["variants"]] == ["antialiased"]
    upright = report["variants"][0]["training"]["test_accuracy_upright"]
    assert upright == pytest.approx(metrics["test_accuracy"], abs=1e-9)  # the same weights as the run's own test
    assert report["variants"][0]["ok"]

    # loading by hand gives the same logits as the model the run finished with
    model, _ = load_run_model(out, parse_config(TINY), store=store)
    again, _ = load_run_model(out, parse_config(TINY), store=store)
    x = torch.rand(4, 1, 9, 9)
    assert torch.equal(model(x), again(x))


def test_runs_from_another_config_variant_or_operators_are_refused(store: Path, tmp_path: Path) -> None:
    config = _write(tmp_path / "tiny.json", TINY)
    out = tmp_path / "run"
    assert _invoke("train", str(config), "--out", str(out), "--epochs", "1", "--variant", "plain",
                   store=store).exit_code == 0

    wider = json.loads(json.dumps(TINY))
    wider["stages"][1]["channels"] = 5
    other = _write(tmp_path / "wider.json", wider)
    cases = [
        (["eval-model", str(other), "--weights", str(out)], "trained from another configuration", "stages"),
        (["eval-model", str(config), "--weights", str(out), "--variants", "antialiased"], "variant plain", "antialiased"),
        (["train", str(other), "--out", str(out), "--resume"], "another configuration", "stages"),
        (["train", str(config), "--out", str(out), "--resume", "--variant", "none"], "variant plain", "none"),
        (["train", str(config), "--out", str(out), "--resume", "--seed", "3"], "seed 0, not 3", ""),
    ]
    for args, message, detail in cases:
        r = _invoke(*args, store=store)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 1 and len(lines) == 1 and message in lines[0] and detail in lines[0], (args, r.stderr)
    # another learning rate is another configuration too
    faster = json.loads(json.dumps(TINY))
    faster["training"]["learning_rate"] = 2e-2
    r = _invoke("eval-model", str(_write(tmp_path / "faster.json", faster)), "--weights", str(out), store=store)
    assert r.exit_code == 1 and "training.learning_rate" in r.stderr

    # other operator files: the manifest's checksum no longer matches the store's
    manifest = json.loads((out / "run.json").read_text())
    manifest["operators"][0]["checksum"] = "sha256:" + "0" * 64
    (out / "run.json").write_text(json.dumps(manifest))
    r = _invoke("eval-model", str(config), "--weights", str(out), store=store)
    assert r.exit_code == 1 and "other operator files (C4>C2" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("which", ["weights.pt", "checkpoint-0001.pt"])
def test_a_byte_flip_in_a_checkpoint_is_refused(store: Path, tmp_path: Path, which: str) -> None:
    config = _write(tmp_path / "tiny.json", TINY)
    out = tmp_path / "run"
    assert _invoke("train", str(config), "--out", str(out), "--epochs", "1", store=store).exit_code == 0
    if which.startswith("checkpoint"):  # an unfinished run is evaluated (and resumed) from its checkpoint
        manifest = json.loads((out / "run.json").read_text())
        del manifest["weights"], manifest["metrics"]
        (out / "run.json").write_text(json.dumps(manifest))
    assert _invoke("eval-model", str(config), "--weights", str(out), "--images", "4", store=store).exit_code == 0
    data = bytearray((out / which).read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / which).write_bytes(bytes(data))
    r = _invoke("eval-model", str(config), "--weights", str(out), "--images", "4", store=store)
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1
    assert f"{which}: damaged: its sha256 is" in r.stderr
    if which.startswith("checkpoint"):
        r = _invoke("train", str(config), "--out", str(out), "--resume", store=store)
        assert r.exit_code == 1 and "damaged" in r.stderr


def test_bad_input_one_line_and_nothing_written(store: Path, tmp_path: Path) -> None:
    config = _write(tmp_path / "tiny.json", TINY)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    cases = [
        (["--out", str(tmp_path / "new"), "--epochs", "0"], 2, "--epochs"),
        (["--out", str(tmp_path / "new"), "--variant", "smooth"], 2, "--variant"),
        (["--out", str(a_file)], 2, "is a file"),
        (["--out", str(busy)], 2, "is not empty; pass --resume"),
        (["--out", str(busy), "--resume"], 1, "not a run folder"),
        (["--out", str(tmp_path / "missing" / "run")], 2, "does not exist"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--out", str(tmp_path / "new"), "--device", "cuda"], 1, "no CUDA device"))
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, code, message in cases:
        r = _invoke("train", str(config), *args, store=store)
        error = [line for line in r.stderr.splitlines() if line.startswith("Error: ")]
        assert r.exit_code == code and len(error) == 1 and message in error[0], (args, r.stderr)
        j = _invoke("train", str(config), *args, "--json", store=store)
        assert j.exit_code == code and json.loads(j.stdout)["error"]["exit_code"] == code
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]


def test_recipe_keys_are_validated_and_the_old_configs_still_parse() -> None:
    bad = [({"optimizer": "lbfgs"}, "optimizer must be one of adam, adamw, sgd"),
           ({"schedule": "exp"}, "schedule must be one of cosine, onecycle, step, constant"),
           ({"rotation": 270}, "rotation must be true, false or a number of degrees in 0..180"),
           ({"label_smoothing": 1.0}, "label_smoothing must be a number in [0, 1)"),
           ({"gamma": 2.0}, "gamma"), ({"flip": "yes"}, "flip must be true or false"),
           ({"momentum": -0.1}, "momentum"), ({"warmup": 3}, "unknown key 'warmup'")]
    for training, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            parse_config({**TINY, "training": training})
    ok = parse_config({**TINY, "training": {"optimizer": "sgd", "rotation": False, "schedule": "step"}}).training
    assert (ok.optimizer, ok.rotation, ok.schedule, ok.momentum) == ("sgd", 0.0, "step", 0.9)
    from gscli.models import load_config

    root = Path(__file__).resolve().parent.parent
    defaults = {"optimizer": "adam", "schedule": "cosine", "rotation": 180.0, "flip": False, "label_smoothing": 0.0}
    for path in sorted((root / "configs").glob("*")):
        config = load_config(path)
        if getattr(config, "kind", "gcnn") == "gcnn":
            if path.suffix == ".toml" and tomllib is None:  # Python 3.10 reads no TOML configs at all
                continue
            raw = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
            given = raw.get("training", {})
            t = config.training  # the original recipe for every key the file does not set
            for key, default in defaults.items():
                assert getattr(t, key) == given.get(key, default), (path, key)


def test_schedules_follow_their_definition() -> None:
    from gscli.models._train import make_optimizer, make_schedule

    def lrs(**training):
        settings = parse_config({**TINY, "training": {"epochs": 4, "learning_rate": 0.1, **training}}).training
        optimizer = make_optimizer(settings, [torch.nn.Parameter(torch.zeros(1))])
        schedule = make_schedule(settings, optimizer, steps_per_epoch=5)
        found = []
        for _ in range(20):
            found.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        return found

    step = lrs(schedule="step", step_epochs=2, gamma=0.5)
    assert step[:10] == [0.1] * 10 and step[10:] == pytest.approx([0.05] * 10)
    cosine = lrs()
    assert cosine[0] == 0.1 and cosine[10] == pytest.approx(0.05) and cosine[-1] < 0.002
    one = lrs(schedule="onecycle")
    assert max(one) == pytest.approx(0.1) and one.index(max(one)) == 5 and one[0] < 0.01 and one[-1] < 0.001
    assert lrs(schedule="constant") == [0.1] * 20


def test_augmentation_rotates_within_the_range_and_flips() -> None:
    from gscli.models._train import apply_augmentation, draw_augmentation

    settings = parse_config({**TINY, "training": {"rotation": 30, "flip": True}}).training
    angles, flips = draw_augmentation(4000, settings, torch.Generator().manual_seed(0))
    assert angles.abs().max() <= torch.pi / 6 and angles.abs().max() > 0.95 * torch.pi / 6 and angles.min() < 0
    assert 0.45 < flips.double().mean() < 0.55
    x = torch.rand(2, 1, 9, 9)
    moved = apply_augmentation(x, torch.zeros(2, dtype=torch.float64), torch.tensor([True, False]))
    assert torch.allclose(moved[0], x[0].flip(-1), atol=1e-6) and torch.allclose(moved[1], x[1], atol=1e-6)
    none = parse_config({**TINY, "training": {"rotation": 0}}).training
    assert draw_augmentation(4, none, torch.Generator()) == (None, None)


_INTERRUPT = """
import sys, json
sys.argv = ["gscli", "train", sys.argv[1], "--out", sys.argv[2], "--store", sys.argv[3], "--epochs", "50"]
from gscli.__main__ import main
main()
"""


def test_ctrl_c_during_training_leaves_a_loadable_run_and_exits_130(store: Path, tmp_path: Path) -> None:
    config = _write(tmp_path / "tiny.json", TINY)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _INTERRUPT, str(config), str(out), str(store)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # a few seconds on an idle machine; the margin is for loaded ones
        while not (out / "run.json").exists():
            assert child.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("Error: interrupted; the run folder")
    run = read_run(out)
    assert 1 <= run.epoch < 50 and not run.finished
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    assert [p.name for p in out.glob("checkpoint-*.pt")] == [f"checkpoint-{run.epoch:04d}.pt"]
    model, _ = load_run_model(out, parse_config(TINY), store=store)
    assert model(torch.rand(2, 1, 9, 9)).shape == (2, 10)
    lines = (out / "log.jsonl").read_text().splitlines()
    assert len(lines) == run.epoch
