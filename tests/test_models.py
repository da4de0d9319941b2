"""G-CNN models: configuration validation, exact invariance, field layout, error propagation, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gscli.build import build
from gscli.cli import main
from gscli.errors import FormatError
from gscli.fileformat import read_operator
from gscli.models import ConfigError, load_config, parse_config, resolve_operators, subgroup_types
from gscli.nn import InputError
from gscli.specs import GroupSpec, OperatorSpec

pytest.importorskip("escnn", reason="models are built from escnn convolutions")
pytest.importorskip("sklearn", reason="the analysis uses scikit-learn's digits")
from gscli.models import _escnn_nn
from gscli.models._analysis import (
    grid_transforms,
    prediction_invariance,
    propagate_errors,
    variant_errors,
)
from gscli.models._build import build_model
from gscli.models._data import load_digits

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
OPERATORS = ["C4>C2", "C2>C1", "D4>D2", "D2>D1"]

# Small models: 17x17 digits, strides 2 (17 -> 9 -> 5), a few fields.
P4 = {"name": "p4", "group": "C4", "image_size": 17, "stages": [
    {"name": "lift", "channels": 3, "kernel_size": 5},
    {"name": "b1", "channels": 4, "stride": 2, "rate": 2},
    {"name": "b2", "channels": 4, "stride": 2}]}
P4M = {"name": "p4m", "group": "D4", "image_size": 17, "stages": [
    {"name": "lift", "channels": 2, "kernel_size": 5},
    {"name": "b1", "channels": 3, "stride": 2, "subgroup": "D2"},
    {"name": "b2", "channels": 3, "stride": 2, "subgroup": "D1"}]}


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("operators")
    for name in OPERATORS:
        group, subgroup = name.split(">")
        build(group, subgroup=subgroup, out=folder)
    return folder


@pytest.fixture(scope="session")
def digits() -> torch.Tensor:
    _, test = load_digits(17, test_size=500, seed=0)
    return test.images[:12]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def transformed(model, x: torch.Tensor, index: int) -> torch.Tensor:
    """The images moved by element ``index`` of G, with escnn's own action on the input field type."""
    element = list(model.input_type.gspace.fibergroup.elements)[index]
    return torch.as_tensor(model.input_type.transform(x, element), dtype=x.dtype)


# -- configuration ---------------------------------------------------------------------------------


def test_config_parses_and_derives_sizes() -> None:
    cfg = parse_config(P4M)
    assert str(cfg.group) == "D4" and [s.name for s in cfg.stages] == ["lift", "b1", "b2"]
    assert cfg.spatial_sizes() == [(17, 17), (17, 9), (9, 5)]
    assert [str(s.subgroup) for s in cfg.stages[1:]] == ["D2", "D1"]
    assert parse_config(cfg.as_dict()) == cfg  # as_dict round-trips
    assert cfg.with_variant("plain").group_downsampling == "plain"


@pytest.mark.parametrize(("change", "message"), [
    ({"stages": [{"channels": 2, "rate": 3}]},
     "stage 0 ('stage0'): rate 3 does not fit C4 (|C4| = 4); rates with a subgroup: 1 (C4), 2 (C2), 4 (C1)"),
    ({"stages": [{"channels": 2, "rate": 2}, {"name": "late", "channels": 2, "rate": 4}]},
     "stage 1 ('late'): rate 4 does not fit C2 (|C2| = 2); rates with a subgroup: 1 (C2), 2 (C1)"),
    ({"stages": [{"name": "x", "channels": 2, "subgroup": "D2"}]},
     ("stage 0 ('x'): D2 is not a subgroup of C4 (the stage's group); rates and subgroup types of C4: "
      "1 (C4), 2 (C2), 4 (C1)")),
    ({"stages": [{"channels": 2, "subgroup": "C2", "rate": 4}]},
     "stage 0 ('stage0'): subgroup C2 has index 2 in C4, not rate 4"),
    ({"image_size": 15, "stages": [{"channels": 2, "stride": 2}, {"name": "s", "channels": 2, "stride": 2}]},
     "stage 1 ('s'): stride 2 on 8x8 maps does not keep the grid centre a sample point"),
    ({"image_size": 16}, "model: image_size must be odd"),
    ({"stages": [{"channels": 2, "kernel_size": 4}]}, "stage 0 ('stage0'): kernel_size must be odd"),
    ({"stages": [{"channels": 2, "chanels": 3}]}, "stage 0 ('stage0'): unknown key 'chanels'; allowed: name:"),
    ({"stages": [{"kernel_size": 3}]}, "stage 0 ('stage0'): 'channels' is required"),
    ({"stages": [{"channels": 0}]}, "stage 0 ('stage0'): channels must be an integer >= 1, got 0"),
    ({"group": "O"}, "model: group O acts on 3-D voxels; give grid_size"),
    ({"group": "X4"}, "model: unknown group 'X4'"),
    ({"group_downsampling": "blur"}, "model: group_downsampling must be one of antialiased, plain, none, got 'blur'"),
    ({"stages": []}, "model: 'stages' must be a non-empty list"),
    ({"stages": [{"name": "a", "channels": 1}, {"name": "a", "channels": 1}]}, "model: stage names must be unique, 'a' repeats"),
    ({"training": {"epochs": 0}}, "training: epochs must be an integer >= 1, got 0"),
])
def test_config_errors_name_the_stage_and_what_is_allowed(change: dict, message: str) -> None:
    data = {"group": "C4", "image_size": 17, "stages": [{"channels": 2}], **change}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(("change", "key"), [
    ({"stages": [{"channels": 2, "kernel_size": 99}]}, "kernel_size 99 is larger than the 17x17 maps"),
    ({"image_size": 4097}, "image_size 4097"),
    ({"stages": [{"channels": 100000000}]}, "channels = 100000000"),
    ({"in_channels": 10**9}, "in_channels = 1000000000"),
])
def test_sizes_that_cannot_be_allocated_are_refused_up_front(change: dict, key: str) -> None:
    """kernel_size 99 on 17x17 images was killed at 24 GB; image_size 4097 asked for 120 GB; 10^8 channels ran on."""
    data = {"group": "C4", "image_size": 17, "stages": [{"channels": 2}], **change}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    assert key in message and "\n" not in message, message


def test_memory_estimate_refuses_against_what_is_available() -> None:
    from gscli.models._config import check_memory, estimate_memory

    config = parse_config(P4)
    total, parts = estimate_memory(config, 64)
    assert total == sum(p for p, _ in parts) and parts[0][0] >= parts[-1][0]
    check_memory(config, 64, available=total)  # fits exactly
    with pytest.raises(ConfigError, match="only 0.0 GiB is available; the largest part is stage"):
        check_memory(config, 64, available=total - 1)


def test_subgroup_types_against_enumeration() -> None:
    """Index-R subgroup types of C_N / D_N, against a brute-force list of (type, order) pairs."""
    for group in ["C1", "C6", "C12", "D1", "D4", "D6", "D12"]:
        spec = GroupSpec.parse(group)
        n = spec.n
        found = {f"C{m}": m for m in range(1, n + 1) if n % m == 0}
        if spec.family == "D":
            found.update({f"D{m}": 2 * m for m in range(1, n + 1) if n % m == 0})
        for rate in range(1, spec.order + 1):
            expected = sorted(t for t, order in found.items() if order * rate == spec.order)
            assert subgroup_types(spec, rate) == expected, (group, rate)


def test_ambiguous_rate_is_resolved_like_gscli_build(tmp_path: Path) -> None:
    cfg = parse_config({"group": "D4", "image_size": 17, "stages": [
        {"channels": 2, "rate": 2}, {"channels": 2, "stride": 2, "subgroup": "D1"}]})
    chosen = build("D4", rate=2, out=tmp_path).spec  # what `gscli build D4 --rate 2` picks
    assert resolve_operators(cfg) == [chosen, OperatorSpec.parse(f"{chosen.subgroup}>D1")]
    assert resolve_operators(cfg.with_variant("none")) == [None, None]
    bad = parse_config({"group": "D4", "image_size": 17, "stages": [
        {"channels": 2, "rate": 2}, {"name": "next", "channels": 2, "subgroup": "C4"}]})
    with pytest.raises(ConfigError, match=re.escape(f"stage 1 ('next'): C4 (rate None) does not fit {chosen.subgroup}")):
        resolve_operators(bad)


def test_load_config_toml_json_and_errors(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps(P4))
    toml = ('group = "C4"\nimage_size = 17\nname = "p4"\n[[stages]]\nname = "lift"\nchannels = 3\nkernel_size = 5\n'
            '[[stages]]\nname = "b1"\nchannels = 4\nstride = 2\nrate = 2\n[[stages]]\nname = "b2"\nchannels = 4\n'
            'stride = 2\n')
    (tmp_path / "m.toml").write_text(toml)
    assert load_config(tmp_path / "m.json") == load_config(tmp_path / "m.toml") == parse_config(P4)
    (tmp_path / "bad.toml").write_text("group = \n")
    for name, message in [("missing.toml", "no such configuration file"), ("m.yaml", "are .json or .toml files"),
                          ("bad.toml", "not valid TOML")]:
        if name == "m.yaml":
            (tmp_path / name).write_text("x")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(tmp_path / name)


@pytest.mark.parametrize("path", [p for p in sorted(CONFIGS.glob("*.*"))  # G-CNN configs (other kinds: own tests)
                                  if getattr(load_config(p), "kind", "gcnn") == "gcnn"], ids=lambda p: p.name)
def test_example_configs_are_valid(path: Path) -> None:
    cfg = load_config(path)
    operators = resolve_operators(cfg)
    assert any(op is not None for op in operators), f"{path.name} has no group downsampling"
    assert cfg.image_size % 2 == 1 and all((a - 1) % s.stride == 0 for (a, _), s in zip(cfg.spatial_sizes(), cfg.stages))


# -- the built model -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [P4, P4M], ids=["p4", "p4m"])
@pytest.mark.parametrize("variant", ["antialiased", "plain", "none"])
def test_blocks_are_equivariant_for_transforms_in_their_group(store: Path, digits: torch.Tensor, config: dict,
                                                              variant: str) -> None:
    """Every block's raw K-fields obey escnn's own K action: checks the field layout after gscli layers."""
    model = build_model(parse_config(config), variant, store=store, seed=1).eval()
    traced, _, _ = model.trace(digits)
    checked = 0
    with torch.no_grad():
        for t in grid_transforms(model):
            traced_g, _, _ = model.trace(transformed(model, digits, t.index))
            for i, (block, moved) in enumerate(zip(traced, traced_g)):
                if t.index not in block.block.nodes_in_g:
                    continue
                field_type = model.field_type(i)
                element = list(field_type.gspace.fibergroup.elements)[block.block.nodes_in_g.index(t.index)]
                expected = torch.as_tensor(field_type.transform(block.tensor, element), dtype=torch.float32)
                error = relative(moved.tensor, expected)
                assert error < 1e-5, f"{config['name']} {variant} {block.block.name} {t.name}: {error:.2e}"
                checked += 1
    assert checked >= len(traced)  # at least every block under one transform


def test_restriction_with_another_element_order_is_refused(store: Path) -> None:
    data = read_operator(store / "D4-D2.h5")
    escnn_id = tuple(json.loads(data.attrs["escnn_subgroup_id"]))
    gspace = _escnn_nn.gspace_of(GroupSpec.parse("D4"))
    nodes = data["subgroup_nodes"].tolist()
    sub = _escnn_nn.restrict(gspace, escnn_id, nodes, "D4>D2")
    assert sub.fibergroup.order() == 4
    with pytest.raises(FormatError, match=re.escape(f"subgroup_nodes are {nodes[::-1]}")):
        _escnn_nn.restrict(gspace, escnn_id, nodes[::-1], "D4>D2")
    with pytest.raises(FormatError, match="records no escnn subgroup id"):
        _escnn_nn.restrict(gspace, None, nodes, "D4>D2")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", [P4, P4M], ids=["p4", "p4m"])
@pytest.mark.parametrize("variant", ["antialiased", "plain"])
def test_logits_invariant_under_transforms_in_the_last_group(store: Path, digits: torch.Tensor, config: dict,
                                                             variant: str, dtype: torch.dtype) -> None:
    """Measured over seeds 0-9 on 64 digits: at most 8.4e-8 in float32 and 1.6e-8 in float64 (escnn
    samples its kernel bases in float32, so float64 models are not exact to float64 rounding). The
    tolerances 1e-4 / 1e-6 leave >1000x / 60x margin for rounding that grows with depth and width."""
    model = build_model(parse_config(config), variant, store=store, seed=2, dtype=dtype).eval()
    final = model.block_specs[-1].nodes_in_g
    inside = [t for t in grid_transforms(model) if t.index in final]
    outside = [t for t in grid_transforms(model) if t.index not in final]
    assert inside and outside  # p4: r^2 in C2; p4m: one diagonal flip in D1
    tol = 1e-4 if dtype == torch.float32 else 1e-6
    with torch.no_grad():
        logits = model(digits.to(dtype))
        for t in inside:
            assert relative(model(transformed(model, digits.to(dtype), t.index)), logits) < tol, t
        # sensitivity: transforms outside the last group do move the logits
        assert max(relative(model(transformed(model, digits.to(dtype), t.index)), logits) for t in outside) > 1e-3


def test_centre_off_grid_breaks_exact_invariance(store: Path) -> None:
    """Why sizes are validated: stride 2 on a 16x16 grid (centre between pixels) is not rotation-exact."""
    good = parse_config(P4)
    odd = build_model(good, store=store, seed=3).eval()
    even = build_model(replace(good, image_size=16), store=store, seed=3).eval()
    x17 = load_digits(17, 500, 0)[1].images[:8]
    x16 = x17[:, :, :16, :16]
    with torch.no_grad():
        half_turn = next(t for t in grid_transforms(odd) if t.name == "r^2")
        assert relative(odd(transformed(odd, x17, half_turn.index)), odd(x17)) < 1e-4
        assert relative(even(torch.rot90(x16, 2, (2, 3))), even(x16)) > 1e-3


def test_group_layers_apply_plain_sampling_and_the_antialiased_operator(store: Path, digits: torch.Tensor) -> None:
    """Independent references: plain = the K-values on H's nodes; anti-aliased = D from the file (numpy)."""
    cfg = parse_config(P4)
    for variant in ("plain", "antialiased"):
        model = build_model(cfg, variant, store=store, seed=4).eval()
        with torch.no_grad():
            traced, _, _ = model.trace(digits)
        names = [t.block.name for t in traced]
        before, after = traced[names.index("b1.pool")].tensor, traced[names.index("b1.group")].tensor
        f = before.double().reshape(len(digits), 4, 4, 9, 9).numpy()
        data = read_operator(store / "C4-C2.h5")
        if variant == "plain":
            expected = f[:, :, data["subgroup_nodes"]]
        else:
            expected = np.einsum("ij,bcjxy->bcixy", data["downsample"], f)
        got = after.double().reshape(len(digits), 4, 2, 9, 9).numpy()
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_operators_are_buffers_and_counts_add_up(store: Path, digits: torch.Tensor) -> None:
    cfg = parse_config(P4)
    aa, plain, none = (build_model(cfg, v, store=store, seed=5) for v in ("antialiased", "plain", "none"))
    for model in (aa, plain):
        layer = model.downsampling_layers()[0]
        assert list(layer.parameters()) == []
        assert {"operator_down", "operator_up", "subgroup_nodes"} <= {n for n, _ in layer.named_buffers()}
        assert any(k.endswith("operator_down") for k in model.state_dict())
    assert aa.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(p, q) for p, q in zip(aa.parameters(), plain.parameters()))  # same seed, same weights
    traced, _, _ = aa.eval().trace(digits)
    assert aa.activation_count() == sum(t.tensor[0].numel() for t in traced)
    assert none.parameter_count() > aa.parameter_count() == sum(p.numel() for p in aa.parameters())
    assert none.downsampling_layers() == [] and str(none.final_group) == "C4"
    with pytest.raises(InputError, match=re.escape("p4: expected images (batch, 1, 17, 17), got (2, 1, 16, 16)")):
        aa(torch.zeros(2, 1, 16, 16))


# -- error propagation -----------------------------------------------------------------------------


def test_lifted_error_at_the_group_layer_is_the_projector_commutator(store: Path, digits: torch.Tensor) -> None:
    """For anti-aliased features, lift = U D f = P f (U S P = P), so the block's equivariance error
    under g equals ||P lambda(g) f_g - lambda(g) P f|| / ||P f||, computed here with numpy."""
    model = build_model(parse_config(P4), "antialiased", store=store, seed=6).eval()
    report = variant_errors(model, digits, grid_transforms(model))
    data = read_operator(store / "C4-C2.h5")
    P = data["antialias"]
    with torch.no_grad():
        traced, _, _ = model.trace(digits)
    names = [t.block.name for t in traced]
    f = traced[names.index("b1.pool")].tensor
    layer = report.layers[names.index("b1.group")]
    for t in grid_transforms(model):
        with torch.no_grad():
            traced_g, _, _ = model.trace(transformed(model, digits, t.index))
        f_g = traced_g[names.index("b1.pool")].tensor.double().reshape(len(digits), 4, 4, 9, 9).numpy()
        f_np = f.double().reshape(len(digits), 4, 4, 9, 9).numpy()
        lam = np.rot90(f_np, t.index, axes=(3, 4))  # escnn's r^k moves the grid like rot90 k times ...
        lam = lam[:, :, (np.arange(4) - t.index) % 4]  # ... and shifts the fibers: (lambda(r^k) f)(x) = f(r^-k x)
        assert np.abs(lam - f_g).max() < 1e-5 * np.abs(f_g).max()  # the pre-downsampling features are C4-equivariant
        lifted_g = np.einsum("ij,bcjxy->bcixy", P, f_g)
        moved = np.einsum("ij,bcjxy->bcixy", P, f_np)
        moved = np.rot90(moved, t.index, axes=(3, 4))[:, :, (np.arange(4) - t.index) % 4]
        expected = np.linalg.norm(lifted_g - moved) / np.linalg.norm(np.einsum("ij,bcjxy->bcixy", P, f_np))
        assert abs(layer.equivariance[t.name] - expected) <= 1e-4 * max(expected, 1e-3), (t.name, expected)


def test_propagation_report(store: Path) -> None:
    cfg = parse_config(P4)
    report = propagate_errors(cfg, variants=("antialiased", "plain", "none"), images=8, seed=0, store=store)
    assert [t.name for t in report.transforms] == ["r", "r^2", "r^3"]
    aa, plain, none = report.variants
    assert report.ok and aa.final_inside == plain.final_inside == ("r^2",) and none.final_inside == ("r", "r^2", "r^3")
    for variant in (aa, plain, none):
        for layer in variant.layers:
            assert (layer.worst("equivariance", True) or 0) < 1e-5 and (layer.worst("invariance", True) or 0) < 1e-5
    for layer_aa, layer_plain in zip(aa.layers, plain.layers):  # same weights: identical up to the group layer
        if layer_aa.kind == "group":
            break
        assert layer_aa.equivariance == layer_plain.equivariance
    assert none.logits_outside is None and none.logits_inside < 1e-4
    document = json.loads(json.dumps(report.as_dict()))
    assert document["variants"][0]["layers"][0]["name"] == "lift.conv" and document["ok"] is True


def test_antialiasing_lowers_the_logit_error_outside_the_subgroup(store: Path) -> None:
    """p4m model D4 > D2 > D1, random weights: anti-aliased logits move less than plain ones under the
    grid transforms outside D1. Measured over seeds 0-19 with this model and 16 digits: anti-aliased
    lower in 20 of 20 seeds (plain / anti-aliased = 2.3 to 9.1); asserted for three seeds. (For the
    p4 model C4 > C2 the logits ordering held in only 17 of 20 seeds, so it is not asserted there;
    see the next test and docs/models.md.)"""
    cfg = parse_config(P4M)
    for seed in (0, 1, 2):
        report = propagate_errors(cfg, variants=("antialiased", "plain"), images=16, seed=seed, store=store)
        aa, plain = report.variants
        assert aa.logits_outside < plain.logits_outside, (seed, aa.logits_outside, plain.logits_outside)
        # D4 > D2: the projector commutes with all of D4, so lifted anti-aliased features stay D4-equivariant
        group_aa = next(layer for layer in aa.layers if layer.name == "b1.group")
        group_plain = next(layer for layer in plain.layers if layer.name == "b1.group")
        assert group_aa.worst("equivariance", False) < 1e-5
        assert group_plain.worst("equivariance", False) > 1e-2


def test_antialiasing_lowers_the_feature_error_at_the_c4_to_c2_layer(store: Path) -> None:
    """p4 model, C4 > C2: right after the group layer, the features lifted back to C4 are closer to
    equivariant under 90-degree rotations with anti-aliasing. Measured (worst over r, r^3; seeds 0-19,
    16 digits): lower in 20 of 20 seeds. The logits ordering is not asserted (17 of 20 seeds)."""
    cfg = parse_config(P4)
    for seed in (0, 1, 2):
        aa, plain = propagate_errors(cfg, variants=("antialiased", "plain"), images=16, seed=seed, store=store).variants
        layer_aa, layer_plain = (next(x for x in v.layers if x.name == "b1.group") for v in (aa, plain))
        assert layer_aa.worst("equivariance", False) < layer_plain.worst("equivariance", False), seed


def test_prediction_invariance(store: Path, digits: torch.Tensor) -> None:
    cfg = parse_config(P4)
    none = build_model(cfg, "none", store=store, seed=7)
    errors, agreement = prediction_invariance(none, digits, grid_transforms(none), batch_size=5)
    assert set(errors) == {"r", "r^2", "r^3"} and max(errors.values()) < 1e-4 and agreement == 1.0
    plain = build_model(cfg, "plain", store=store, seed=7).eval()
    errors, agreement = prediction_invariance(plain, digits, grid_transforms(plain))
    with torch.no_grad():  # independent count: same class for x and all three rotations (rot90, as escnn's r^k)
        classes = torch.stack([plain(torch.rot90(digits, k, (2, 3))).argmax(1) for k in range(4)])
    assert agreement == float((classes == classes[0]).all(0).double().mean())
    assert errors["r^2"] < 1e-4 < errors["r"]


def test_trained_weights_keep_exact_invariance(store: Path) -> None:
    """Training (300 digits, 2 epochs) lowers the loss, and the trained model is still exactly
    invariant under its last group, with batch norm running statistics in eval mode."""
    cfg = parse_config({**P4, "training": {"epochs": 2, "batch_size": 60, "learning_rate": 0.01, "test_size": 1497}})
    report = propagate_errors(cfg, weights="trained", variants=("antialiased", "plain"), images=8, store=store)
    for variant in report.variants:
        training = variant.training
        assert training is not None and training["steps"] == 2 * 5
        assert training["losses"][1] < training["losses"][0]
        assert 0.0 <= training["test_accuracy_rotated"] <= 1.0
        assert variant.ok and variant.logits_inside < 1e-4


# -- command line ----------------------------------------------------------------------------------


def test_cli_json_and_plot(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "p4.json"
    path.write_text(json.dumps(P4))
    plot = tmp_path / "errors.png"
    result = CliRunner().invoke(main, ["eval-model", str(path), "--store", str(store), "--images", "4",
                                       "--variants", "antialiased,none", "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [v["variant"] for v in document["variants"]] == ["antialiased", "none"]
    assert document["variants"][0]["groups"] == ["C4", "C2"] and document["ok"] is True
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_table(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "p4.json"
    path.write_text(json.dumps(P4))
    result = CliRunner().invoke(main, ["eval-model", str(path), "--store", str(store), "--images", "4",
                                       "--variants", "plain"])
    assert result.exit_code == 0, result.output
    assert "plain: C4 > C2" in result.stdout and "b1.group" in result.stdout and "r^2 (rotation by 180 deg)" in result.stdout


def test_cli_escapes_names_from_the_config(store: Path, tmp_path: Path) -> None:
    """A config's name and stage names are file strings: escape sequences and markup are shown, never acted on."""
    path = tmp_path / "p4.json"
    stages = [{**P4["stages"][0], "name": "li\x1b]8;;x\x07ft"}, *P4["stages"][1:]]
    path.write_text(json.dumps({**P4, "name": "evil\x1b[2J[bold]x", "stages": stages}))
    result = CliRunner().invoke(main, ["eval-model", str(path), "--store", str(store), "--images", "2",
                                       "--variants", "plain"])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "evil\\x1b[2J[bold]x: group C4" in result.stdout and "evil\\x1b[2J[bold]x: logits" in result.stdout
    assert "li\\x1b]8;;x\\x07ft.conv" in result.stdout
    small = tmp_path / "small.json"  # an error message that names the model
    small.write_text(json.dumps({"name": "evil\x1b[2J", "group": "C4", "image_size": 7,
                                 "stages": [{"channels": 2, "kernel_size": 3}]}))
    result = CliRunner().invoke(main, ["eval-model", str(small), "--store", str(store)])
    assert result.exit_code == 2 and "\x1b" not in result.output
    assert "evil\\x1b[2J: the digits are 8x8" in result.output


def test_cli_errors(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"group": "C4", "image_size": 17, "stages": [{"name": "x", "channels": 2, "rate": 3}]}))
    result = CliRunner().invoke(main, ["eval-model", str(bad), "--store", str(store)])
    assert result.exit_code == 2
    assert f"Error: {bad}: stage 0 ('x'): rate 3 does not fit C4" in result.output
    result = CliRunner().invoke(main, ["eval-model", str(bad), "--variants", "antialiased,fancy"])
    assert result.exit_code == 2 and "give distinct names among antialiased, plain, none" in result.output
    # a failed guarantee exits with 1: force it with a zero tolerance
    from gscli.models import _analysis

    monkeypatch.setitem(_analysis.INVARIANCE_TOL, torch.float32, 0.0)
    good = tmp_path / "p4.json"
    good.write_text(json.dumps(P4))
    result = CliRunner().invoke(main, ["eval-model", str(good), "--store", str(store), "--images", "4",
                                       "--variants", "plain", "--json"])
    assert result.exit_code == 1
    assert "Error: logits not invariant where theory says they are: plain: logits change by" in result.output


@pytest.mark.parametrize("config", ["configs/p4-digits.toml", "configs/scale-mnist.toml"])
def test_eval_model_refuses_a_plot_folder_that_does_not_exist_before_measuring(config: str, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from gscli.models import _analysis

    def measured(*args, **kwargs):  # the check must come first: measuring takes minutes
        raise AssertionError("measured before the --plot folder was checked")

    monkeypatch.setattr(_analysis, "propagate_errors", measured)
    root = Path(__file__).resolve().parent.parent
    target = tmp_path / "missing" / "errors.png"
    result = CliRunner().invoke(main, ["eval-model", str(root / config), "--plot", str(target)])
    assert result.exit_code == 2, result.output
    assert f"folder {str(target.parent)!r} for {str(target)!r} does not exist" in result.output
    assert not target.parent.exists()


def test_a_model_builds_its_missing_operators_without_importing_the_build_layer(tmp_path: Path) -> None:
    """A user's script imports only gscli.models: the operators its stages need are still built on demand
    (the models layer installs the runtime's builder, gscli.hooks), into the store it names."""
    code = (
        "import sys, warnings\n"
        "from gscli.models import build_model, parse_config\n"
        "config = parse_config({'group': 'C6', 'image_size': 9, 'stages': [{'channels': 2, 'kernel_size': 3},"
        " {'channels': 2, 'subgroup': 'C3'}]})\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    build_model(config, store={str(tmp_path)!r})\n"
        "print(sorted(type(w.message).__name__ for w in caught))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OperatorBuiltWarning" in result.stdout and (tmp_path / "C6-C3.h5").exists()
