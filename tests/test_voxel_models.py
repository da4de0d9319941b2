"""3-D (voxel) models: configuration errors, exact invariance with negative controls, voxel transforms, data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gscli.models import ConfigError, parse_config, resolve_operators
from gscli.models._polycubes import CLASSES, PIECES, cube_rotations, load_polycubes, polycubes
from gscli.specs import OperatorSpec

STAGES = [{"channels": 2}, {"channels": 2, "stride": 2, "subgroup": "O"}, {"channels": 2, "subgroup": "D4"}]


def voxel_config(**changes):
    data = {"group": "Oh", "grid_size": 5, "classes": 8, "stages": STAGES, **changes}
    return parse_config({k: v for k, v in data.items() if v is not None})


# -- configuration (no escnn) -------------------------------------------------------------------


def test_voxel_config_parses_and_resolves_the_chain() -> None:
    config = voxel_config()
    assert config.dimensions == 3 and config.spatial_sizes() == [(5, 5), (5, 3), (3, 3)]
    assert resolve_operators(config) == [None, OperatorSpec.parse("Oh>O"), OperatorSpec.parse("O>D4")]
    assert config.as_dict()["grid_size"] == 5 and "image_size" not in config.as_dict()
    assert parse_config(config.as_dict()) == config


@pytest.mark.parametrize(("changes", "message"), [
    ({"grid_size": 8}, r"^model: grid_size must be odd .*got 8$"),
    ({"group": "D4"}, r"^model: group D4 has no voxel model; grid_size \(3-D voxels\) needs group Oh or O"),
    ({"group": "I"}, r"^model: group I has no voxel model"),
    ({"image_size": 5}, r"^model: give image_size \(2-D images\) or grid_size \(3-D voxels\), not both$"),
    ({"stages": [{"channels": 2, "subgroup": "T"}]},
     r"^stage 0 \('stage0'\): subgroup T of Oh has no escnn 3-D gspace .*: O \(rate 2\), D4 \(rate 6\)"),
    ({"group": "O", "stages": [{"channels": 2, "rate": 6}]},
     r"^stage 0 \('stage0'\): rate 6 fits C4 and D2: name one with subgroup"),
    ({"training": {"dataset": "mnist"}}, r"^training: dataset 'mnist' holds images; voxel models"),
    ({"group": "O", "stages": [{"channels": 2, "subgroup": "D4", "rate": 2}]},
     r"^stage 0 \('stage0'\): subgroup D4 has index 3 in O, not rate 2$"),
])
def test_voxel_config_errors_name_the_key_and_what_is_allowed(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        voxel_config(**changes)


def test_image_config_with_a_point_group_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^model: group O acts on 3-D voxels; give grid_size .* or use C<N> or D<N>"):
        parse_config({"group": "O", "image_size": 9, "stages": [{"channels": 2}]})


# -- data ---------------------------------------------------------------------------------------


def canonical(cubes: np.ndarray) -> frozenset:
    cubes = cubes - cubes.min(axis=0)
    return frozenset(map(tuple, cubes.tolist()))


def shapes_under(rotations: np.ndarray, piece: str) -> set:
    return {canonical(np.asarray(PIECES[piece]) @ r.T) for r in rotations}


def test_pieces_are_the_eight_tetracubes_with_one_mirror_pair() -> None:
    rotations, everything = cube_rotations(), cube_rotations(proper=False)
    assert len(rotations) == 24 and len(everything) == 48
    one_sided = [shapes_under(rotations, p) for p in CLASSES]
    free = [shapes_under(everything, p) for p in CLASSES]
    for i in range(len(CLASSES)):  # no two classes are rotations of each other
        for j in range(i):
            assert not one_sided[i] & one_sided[j], (CLASSES[i], CLASSES[j])
    mirrored = [(CLASSES[i], CLASSES[j]) for i in range(8) for j in range(i) if free[i] & free[j]]
    assert mirrored == [("screw-b", "screw-a")]


def test_polycubes_are_deterministic_balanced_and_exact() -> None:
    a, la = polycubes(6, grid_size=9, scale=2, seed=3)
    b, lb = polycubes(6, grid_size=9, scale=2, seed=3)
    c, _ = polycubes(6, grid_size=9, scale=2, seed=4)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    assert a.shape == (48, 1, 9, 9, 9) and np.bincount(la).tolist() == [6] * 8
    assert set(np.unique(a).tolist()) == {0.0, 1.0} and (a.reshape(48, -1).sum(1) == 4 * 8).all()
    # every sample is its class's piece at some cube rotation (read back from the voxels)
    rotations = cube_rotations()
    for x, label in zip(a[:, 0], la):
        points = np.argwhere(x > 0)
        cubes = np.unique((points - points.min(axis=0)) // 2, axis=0)  # 2x2x2 blocks -> unit cubes
        assert len(cubes) == 4
        assert canonical(cubes) in shapes_under(rotations, CLASSES[label])
    noisy, _ = polycubes(2, grid_size=9, noise=0.1, seed=0)
    assert 0.05 < float(np.std(noisy - np.round(noisy))) < 0.15
    train, test = load_polycubes(9, per_class=10, test_size=20, seed=1)
    assert len(train) == 60 and len(test) == 20


def test_polycubes_bad_input() -> None:
    with pytest.raises(ConfigError, match="grid_size must be >= 8, got 7"):
        polycubes(1, grid_size=7, scale=2)
    with pytest.raises(ConfigError, match="per_class must be a positive integer"):
        polycubes(0)


# -- models (escnn for voxel transforms and operators) --------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("escnn", reason="voxel models need escnn (operators, voxel transforms)")
    from gscli.build import build

    folder = tmp_path_factory.mktemp("operators")
    for spec in ("Oh>O", "O>D4"):
        group, subgroup = spec.split(">")
        build(group, subgroup=subgroup, out=folder)
    return folder


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def invariance(model, x: torch.Tensor, elements) -> list[float]:
    with torch.no_grad():
        y = model(x)
        return [relative(model(model.transform(x, g)), y) for g in elements]


@pytest.mark.parametrize("variant", ["antialiased", "plain"])
def test_logits_exactly_invariant_under_the_last_group(store: Path, variant: str) -> None:
    from gscli.models import build_model

    config = voxel_config()
    x = torch.randn(2, 1, 5, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = build_model(config, variant, store=store, seed=0, dtype=torch.float64).eval()
    final = model.block_specs[-1].nodes_in_g
    assert str(model.final_group) == "D4" and len(final) == 8
    assert max(invariance(model, x, final)) <= 1e-10
    outside = [g for g in range(48) if g not in final][::7]  # float64 convolutions are slow on CPU: a sample
    assert min(invariance(model, x, outside)) > 1e-4  # negative control: not invariant beyond D4
    model32 = build_model(config, variant, store=store, seed=0, dtype=torch.float32).eval()
    assert max(invariance(model32, x.float(), final)) <= 1e-6  # measured: at most 1.1e-7


def test_a_broken_kernel_permutation_breaks_invariance(store: Path) -> None:
    """Negative control: one element of the lifting convolution moves its kernel wrongly."""
    from gscli.models import build_model

    model = build_model(voxel_config(), "antialiased", store=store, seed=0, dtype=torch.float64).eval()
    x = torch.randn(2, 1, 5, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    final = model.block_specs[-1].nodes_in_g
    lifting = model.blocks[0][0]
    taps = lifting._flat_index.view(lifting.order, -1, 27)  # lifting: (|K|, 1, k^3), entry = voxel of g^-1 x
    taps[1] = taps[0]  # element 1 uses element 0's kernel orientation
    assert max(invariance(model, x, final)) > 1e-3


def test_none_variant_is_invariant_under_all_of_oh_and_checks_shapes(store: Path) -> None:
    from gscli.models import build_model
    from gscli.nn import InputError

    from gscli._escnn import load_group
    from gscli.specs import GroupSpec

    model = build_model(voxel_config(), "none", store=store, seed=0, dtype=torch.float64).eval()
    x = torch.randn(1, 1, 5, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    generators = load_group(GroupSpec.parse("Oh")).generators  # invariance under these is invariance under Oh
    assert len(generators) >= 3 and max(invariance(model, x, generators)) <= 1e-10
    with pytest.raises(InputError, match=r"expected voxels \(batch, C, D, H, W\) = \(batch, 1, 5, 5, 5\), got \(1, 1, 5, 5\)"):
        model(x[..., 0])


def test_voxel_permutations_follow_escnns_3x3_matrices() -> None:
    """Independent of escnn's transform: one fixed frame maps every element's 3x3 action to its permutation."""
    pytest.importorskip("escnn")
    from gscli import _escnn
    from gscli.models._escnn_nn import voxel_permutations
    from gscli.specs import GroupSpec

    perms = voxel_permutations(GroupSpec.parse("Oh"), 3)
    actions = np.rint(_escnn.base_actions("fullOctaOnR3()")).astype(np.int64)
    index = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    frames = []
    for frame in cube_rotations(proper=False):
        points = (index - 1) @ frame.T  # voxel -> point of R^3
        lookup = {tuple(p): i for i, p in enumerate(points.tolist())}
        ok = all([lookup[tuple(p)] for p in (points @ np.linalg.inv(a).round().astype(np.int64).T).tolist()]
                 == perms[g].tolist() for g, a in enumerate(actions))
        frames.append(ok)
    assert sum(frames) == 2  # one frame, up to the inversion (which commutes with every element)


def test_eval_model_on_a_voxel_config(store: Path, tmp_path: Path) -> None:
    """Per-block errors under all 23 cube rotations: float rounding inside each block's group, not outside."""
    import json

    from click.testing import CliRunner

    from gscli.cli import main

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"group": "O", "grid_size": 5, "classes": 8, "training": {"test_size": 8},
                                  "stages": [{"channels": 1}, {"channels": 2, "subgroup": "D4"}]}))
    plot = tmp_path / "errors.png"
    result = CliRunner().invoke(main, ["eval-model", str(config), "--images", "2", "--variants", "antialiased,plain",
                                       "--store", str(store), "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dimensions"] == 3 and len(report["transforms"]) == 23 and report["ok"]
    assert "90° about (0,0,1)" in [t["name"] for t in report["transforms"]]
    assert plot.stat().st_size > 1000
    for variant in report["variants"]:
        for layer in variant["layers"]:
            inside = [v for k, v in layer["equivariance"].items() if k in layer["transforms_in_group"]]
            outside = [v for k, v in layer["equivariance"].items() if k not in layer["transforms_in_group"]]
            assert max(inside) <= 1e-5, (variant["variant"], layer["name"])
            assert len(inside) == (23 if layer["group"] == "O" else 7)
            if outside:
                assert min(outside) > 1e-4, (variant["variant"], layer["name"])  # aliasing is measured, not hidden


# -- blur, hidden-layer equivariance, filter cache, bad input -------------------------------------


@pytest.mark.parametrize("stride", [1, 2])
def test_blur_keeps_a_constant_field_constant(stride: int) -> None:
    """A normalised blur maps a constant to itself away from the zero padding (an unnormalised one scales it ~15x)."""
    from gscli.models._voxel import GaussianBlur3d

    blur = GaussianBlur3d(0.66, stride)
    assert blur.radius == 2
    y = blur(torch.full((2, 3, 11, 11, 11), 2.5, dtype=torch.float64))
    r = -(-blur.radius // stride)  # output voxels whose stencil stays inside the grid
    inner = y[..., r:-r, r:-r, r:-r]
    assert inner.numel() > 0 and float((inner - 2.5).abs().max()) <= 1e-12
    assert float(y[0, 0, 0, 0, 0]) < 2.5  # the corner sees the zero padding (negative control of the crop)


def test_blur_matches_a_separable_sampled_gaussian() -> None:
    """Independent reference: the normalised 1-D Gaussian applied along each axis in turn."""
    from gscli.models._voxel import GaussianBlur3d

    sigma, x = 0.8, torch.randn(1, 1, 7, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t = np.arange(-2, 3)
    g = np.exp(-t**2 / (2 * sigma**2))
    g /= g.sum()
    ref = np.pad(x[0, 0].numpy(), 2)
    for axis in range(3):
        ref = sum(w * np.roll(ref, -int(s), axis=axis) for w, s in zip(g, t))
    assert np.allclose(GaussianBlur3d(sigma, 1)(x)[0, 0].numpy(), ref[2:-2, 2:-2, 2:-2], atol=1e-13, rtol=0)


def _o_config(**changes):
    data = {"group": "O", "grid_size": 5, "classes": 8,
            "stages": [{"channels": 2}, {"channels": 2, "stride": 2}, {"channels": 2}], **changes}
    return parse_config(data)


def _layer_errors(model, x: torch.Tensor, elements) -> list[float]:
    """Largest relative error of trace(g x) against lambda(g) trace(x) over the blocks, for each g."""
    with torch.no_grad():
        before = [t.tensor for t in model.trace(x)[0]]
        found = []
        for g in elements:
            after = [t.tensor for t in model.trace(model.transform(x, g))[0]]
            found.append(max(relative(model.transform_fields(b, g), a) for b, a in zip(before, after)))
        return found


def test_every_hidden_layer_moves_by_the_regular_representation() -> None:
    """Rotating the input by g in O permutes every block's group channels exactly as lambda(g) predicts.

    Negative control: the lifting filter of element g oriented by g instead of g^-1 (the off-by-inverse
    a filter expansion can make while still running, and still giving invariant logits after the max over
    the group) breaks it. (A transposed fiber index, h^-1 g instead of g^-1 h, is no control: it only
    relabels the free weights.)
    """
    pytest.importorskip("escnn")
    from gscli._escnn import load_group
    from gscli.models import build_model
    from gscli.specs import GroupSpec

    model = build_model(_o_config(), "none", seed=0, dtype=torch.float64).eval()
    x = torch.randn(2, 1, 5, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert max(_layer_errors(model, x, range(24))) <= 1e-12
    group = load_group(GroupSpec.parse("O"))
    inverse = torch.from_numpy(np.argmax(group.cayley == group.identity, axis=1))
    taps = model.blocks[0][0]._flat_index.view(24, 27)  # lifting: row g is the kernel voxel of g^-1 x
    taps.copy_(taps[inverse])
    assert min(_layer_errors(model, x, [1, 5, 13])) > 1e-3


def test_filter_is_one_gather_and_cached_outside_training() -> None:
    pytest.importorskip("escnn")
    from gscli.models import build_model

    model = build_model(_o_config(), "none", seed=0)
    conv = model.blocks[1][0]
    k = conv.kernel_size
    # the expansion against the formula W[(c', g), (c, h), x] = w[c', (c, g^-1 h), g^-1 x], read element by element
    from gscli._escnn import load_group
    from gscli.models._escnn_nn import voxel_permutations
    from gscli.specs import GroupSpec

    table = load_group(GroupSpec.parse("O")).cayley
    inv = np.argmax(table == load_group(GroupSpec.parse("O")).identity, axis=1)
    perms = voxel_permutations(GroupSpec.parse("O"), k)
    w, W = conv.weight.detach(), conv.expand().detach().reshape(2, 24, 2, 24, k**3)
    for cp, g, c, h in [(0, 0, 0, 0), (1, 5, 0, 17), (0, 23, 1, 2), (1, 9, 1, 9)]:
        expected = w[cp, c * 24 + table[inv[g], h]][perms[g]]
        assert torch.equal(W[cp, g, c, h], expected)
    model.eval()
    with torch.no_grad():
        first = conv.filter()
        assert conv.filter() is first  # cached: no new expansion per forward
        conv.weight.add_(1.0)  # an optimiser step or load_state_dict bumps the version: the cache is stale
        assert torch.equal(conv.filter(), conv.expand())
    assert conv.filter().requires_grad  # with autograd on, no cache: gradients reach the weight
    model.train()
    with torch.no_grad():
        assert conv.filter() is not conv.filter()


def test_empty_batches_and_wrong_dtypes() -> None:
    pytest.importorskip("escnn")
    from gscli.models import build_model
    from gscli.nn import InputError

    model = build_model(_o_config(), "none", seed=0)
    empty = torch.zeros(0, 1, 5, 5, 5)
    for mode in (model.train, model.eval):
        mode()
        assert model(empty).shape == (0, 8)
    traced, pooled, logits = model.trace(empty)
    assert [t.tensor.shape for t in traced] == [(0, b.fields * 24, b.side, b.side, b.side) for b in model.block_specs]
    assert pooled.shape == (0, 2) and logits.shape == (0, 8)
    with pytest.raises(InputError, match=r"^model: expected float32 voxels \(the model's dtype\), got float64; "):
        model(torch.zeros(1, 1, 5, 5, 5, dtype=torch.float64))
    with pytest.raises(InputError, match=r"expected float32 voxels .*got uint8"):
        model(torch.zeros(1, 1, 5, 5, 5, dtype=torch.uint8))
    with pytest.raises(InputError, match=r"expected voxels \(batch, C, D, H, W\) = \(batch, 1, 5, 5, 5\), got \(1, 1, 5, 5, 7\)"):
        model(torch.zeros(1, 1, 5, 5, 7))


@pytest.mark.parametrize(("data", "message"), [
    ({"group": "O", "grid_size": 9, "stages": [{"channels": 2, "subgroup": "Oh"}]},
     r"^stage 0 \('stage0'\): Oh is not a proper subgroup of O \(the stage's group, order 24\); .*D4 \(rate 3\)"),
    ({"grid_size": 9, "stages": [{"channels": 2}]}, r"^model: 'group' is required .*: Oh or O \(cube groups"),
])
def test_voxel_config_messages_speak_of_voxels(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_memory_refusal_of_a_voxel_config_names_grid_size() -> None:
    from gscli.models._config import check_memory

    config = parse_config({"group": "O", "grid_size": 9, "stages": [{"channels": 2}]})
    with pytest.raises(ConfigError, match=r"channels = 2 on 9x9x9 voxels \(grid_size 9\) .* for 64 grids") as info:
        check_memory(config, 64, available=1000)
    assert "image_size" not in str(info.value) and "maps" not in str(info.value)


# -- data: the mirror pair merged for O_h, classes checked against the config ----------------------


def test_merged_classes_give_mirror_images_one_label() -> None:
    from gscli.models._polycubes import MERGED_CLASSES, classes_for, load_voxel_data

    rotations = cube_rotations()
    one_sided = [shapes_under(rotations, p) for p in CLASSES]
    x, labels = polycubes(12, grid_size=9, scale=2, seed=5, merge_mirror=True)
    assert MERGED_CLASSES == CLASSES[:6] + ("screw",) and np.bincount(labels).tolist() == [12] * 7
    chirality = []
    for voxels, label in zip(x[:, 0], labels):
        points = np.argwhere(voxels > 0)
        cubes = np.unique((points - points.min(axis=0)) // 2, axis=0)
        piece = [i for i, shapes in enumerate(one_sided) if canonical(cubes) in shapes]
        mirror = [i for i, shapes in enumerate(one_sided) if canonical(-cubes) in shapes]  # the inversion
        assert len(piece) == len(mirror) == 1
        assert label == min(piece[0], 6) == min(mirror[0], 6)  # a piece and its mirror image: one label
        if label == 6:
            chirality.append(piece[0])
    assert set(chirality) == {6, 7}  # both screws are in the merged class
    oh = parse_config({"group": "Oh", "grid_size": 9, "classes": 7, "stages": [{"channels": 1}]})
    o = parse_config({"group": "O", "grid_size": 9, "classes": 8, "stages": [{"channels": 1}]})
    assert classes_for(oh) == MERGED_CLASSES and classes_for(o) == CLASSES
    train, test = load_voxel_data(oh, per_class=4, test_size=7, seed=0)
    assert len(train) + len(test) == 28 and int(train.labels.max()) == 6


@pytest.mark.parametrize(("group", "classes", "message"), [
    ("Oh", 8, r"^model: classes = 8, but the Oh tetracube data have 7 classes \(I, O, T, L, S, branch, screw\): "
              r"set classes = 7$"),
    ("O", 7, r"^model: classes = 7, but the O tetracube data have 8 classes .*: set classes = 8$"),
])
def test_a_class_count_that_does_not_match_the_data_is_refused(group: str, classes: int, message: str) -> None:
    from gscli.models._polycubes import load_voxel_data

    config = parse_config({"group": group, "grid_size": 9, "classes": classes, "stages": [{"channels": 1}]})
    with pytest.raises(ConfigError, match=message):
        load_voxel_data(config, per_class=2, test_size=2)


def test_voxel_error_plot_title_fits_the_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The O_h report has 47 transforms: the title must stay inside the figure (it was cut at both edges)."""
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from gscli.models._analysis import ErrorReport, LayerErrors, Transform, VariantErrors
    from gscli.models._plot import plot_errors

    transforms = [Transform(i, f"{90 * (i % 3 + 1)}° about ({i % 2},{i % 3 % 2},1)", "") for i in range(1, 48)]
    errors = {t.name: 1e-3 for t in transforms}
    layer = LayerErrors("lift.conv", "conv", "Oh", (2, 48, 9), tuple(errors), errors, errors)
    report = ErrorReport("oh-polycubes", "Oh", "random", 0, 2, 9, "float32", transforms,
                         [VariantErrors("none", ("Oh",), 10, 10, [layer], errors, tuple(errors), 1e-4)], dimensions=3)
    seen = []
    save = Figure.savefig

    def spy(fig, *args, **kwargs):
        save(fig, *args, **kwargs)
        renderer = fig.canvas.get_renderer()
        seen.append((fig._suptitle.get_window_extent(renderer), fig.bbox, fig._suptitle.get_text()))

    monkeypatch.setattr(Figure, "savefig", spy)
    matplotlib.use("Agg")
    plot_errors(report, tmp_path / "oh.png")
    (box, frame, text), = seen
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1, (box, frame)
    assert "voxel grids" in text and "digits" not in text and "47" in text


# -- learning: the model fits 64 pieces, and eval mode agrees with training mode ------------------

FIT_CONFIG = {"group": "O", "grid_size": 5, "classes": 8,
              "stages": [{"channels": 1}, {"channels": 2, "stride": 2}, {"channels": 8}]}
FIT_STEPS = 40


def test_model_overfits_64_pieces_and_eval_mode_agrees_after_calibration() -> None:
    """64 tetracubes (8 per class, random cube rotations and positions, 5^3 grid): fitted in FIT_STEPS Adam steps.

    The root cause of the voxel models staying at chance: after training, eval mode used batch-norm
    running statistics that lagged far behind the weights (Adam rescales group-conv weights of size
    ~0.03 by ~lr per step), so the eval-mode model was at chance while the training-mode one fitted
    the data. ``calibrate`` recomputes the statistics from the final weights; the stale statistics
    are the negative control.
    """
    pytest.importorskip("escnn")
    from gscli.models import build_model

    torch.set_num_threads(1)
    x, y = polycubes(8, grid_size=5, scale=1, seed=0)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model = build_model(parse_config(FIT_CONFIG), "none", seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    model.train()
    for _ in range(FIT_STEPS):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        batch_stats = model.train()(x)  # what training saw: batch statistics
        stale = model.eval()(x)
        model.calibrate(x, batch_size=64)
        calibrated = model(x)
    assert float((batch_stats.argmax(1) == y).float().mean()) >= 0.95
    assert float((calibrated.argmax(1) == y).float().mean()) >= 0.95
    assert relative(calibrated, batch_stats) <= 0.05  # unbiased vs biased variance: ~1% apart
    assert relative(stale, batch_stats) > 0.3  # negative control: the running statistics after training


@pytest.mark.parametrize(("group", "classes", "expected"), [("Oh", 8, 7), ("O", 7, 8)])
def test_eval_model_refuses_a_class_count_that_does_not_match_the_data(tmp_path: Path, group: str, classes: int,
                                                                        expected: int) -> None:
    import json

    from click.testing import CliRunner

    from gscli.cli import main

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"group": group, "grid_size": 5, "classes": classes, "training": {"test_size": 8},
                                  "stages": [{"channels": 1}]}))
    result = CliRunner().invoke(main, ["eval-model", str(config), "--weights", "trained", "--variants", "none",
                                       "--json"])
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert f"classes = {classes}, but the {group} tetracube data have {expected} classes" in json.dumps(report)
