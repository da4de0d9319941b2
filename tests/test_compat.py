"""``gscli.compat``: the research code's calls, unchanged, on gscli's operators and models."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gscli.compat import (
    CompatWarning,
    SubgroupDownsample,
    UnusedKeywordWarning,
    get_model,
    operator_for,
)
from gscli.compat._layer import _is_subgroup, _reference_planar_nodes
from gscli.errors import SubgroupError
from gscli.nn import GroupDownsample, OperatorBuiltWarning
from gscli.specs import GroupSpec


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(autouse=True)
def _store_env(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSCLI_STORE", str(store))
    warnings.simplefilter("ignore", OperatorBuiltWarning)


def test_readme_downsampling_example_runs_unchanged_and_equals_the_operator_file() -> None:
    device, batch_size, dtype = "cpu", 2, torch.float32
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # -- the research README's example, verbatim --
        d_layer = SubgroupDownsample(
            group_type="dihedral",         # Parent group type
            order=12,                     # Order of rotation elements
            sub_group_type="dihedral",    # Subgroup type to downsample to
            subsampling_factor=2,         # Factor to reduce group by
            num_features=10,              # Number of input feature channels
            generator="r-s",              # Generators for Cayley graph construction
            dtype=torch.float32,          # Data type
            apply_antialiasing=True,      # Enable equivariant anti-aliasing
            anti_aliasing_kwargs={        # Anti-aliasing optimization params
                "iterations": 100,        # Number of optimization steps
                "smoothness_loss_weight": 0.1,  # Smoothness strength in optimization
            },
        ).to(device=device)

        input_tensor = torch.randn(batch_size, 10 * 24, 32, 32, device=device, dtype=dtype)

        out, canonicalization_element = d_layer(input_tensor)
        # -- end of the example --
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10 * 12, 32, 32) and out.dtype == torch.float32
    assert canonicalization_element == [(-1, -1)]
    unused = [w for w in caught if issubclass(w.category, UnusedKeywordWarning)]
    assert len(unused) == 1
    assert "anti_aliasing_kwargs['iterations']" in str(unused[0].message)
    assert "anti_aliasing_kwargs['smoothness_loss_weight']" in str(unused[0].message)
    assert "solves the anti-aliasing projector exactly" in str(unused[0].message)
    copies = [w for w in caught if w.category is CompatWarning]
    assert len(copies) == 1 and "another copy of D6" in str(copies[0].message)

    reference = GroupDownsample.from_catalog("D12-D6", build=False)  # the operator file (shipped with gscli)
    assert torch.equal(out, reference(input_tensor))
    back = d_layer.upsample(out)
    assert back.shape == input_tensor.shape and torch.equal(back, reference.upsample(out))
    # A bandlimited input comes back exactly (a research-code layer with these settings does not).
    band = reference.upsample(torch.randn(batch_size, 10 * 12, 4, 4, dtype=torch.float64))
    assert torch.allclose(d_layer.upsample(d_layer(band)[0]), band, atol=1e-12)


# Every row of the mapping table in docs/migrating.md: research-code request -> the gscli operator of
# index subsampling_factor, by the mathematics (|G|/|H| = factor, H of the named family).
MAPPING = [
    (dict(group_type="cycle", order=8, subsampling_factor=2), "C8>C4", None),
    (dict(group_type="cyclic", order=9, sub_group_type="cycle", subsampling_factor=3), "C9>C3", None),
    (dict(group_type="cycle", order=8, subsampling_factor=2, generator="r"), "C8>C4", None),
    (dict(group_type="dihedral", order=12, sub_group_type="dihedral", subsampling_factor=2), "D12>D6", None),
    (dict(group_type="dihedral", order=12, subsampling_factor=3), "D12>D4", None),
    (dict(group_type="dihedral", order=12, sub_group_type="cycle", subsampling_factor=2), "D12>C12", None),
    (dict(group_type="dihedral", order=12, sub_group_type="cyclic", subsampling_factor=4), "D12>C6", None),
    (dict(group_type="dihedral", order=6, subsampling_factor=1), "D6>D6", None),
    (dict(group_type="dihedral", order=4, sub_group_type="trivial", subsampling_factor=8), "D4>C1", None),
    (dict(group_type="dihedral", order=12, subsampling_factor=2, generator="r,r s"), "D12>D6", "r,r s"),
    (dict(group_type="octahedral", sub_group_type="cycle", subsampling_factor=6), "O>C4", None),
    (dict(group_type="octahedral", order=24, sub_group_type="cycle", subsampling_factor=8), "O>C3", None),
    (dict(group_type="octahedral", sub_group_type="dihedral", subsampling_factor=3), "O>D4", None),
    (dict(group_type="full_octahedral", sub_group_type="octahedral", subsampling_factor=2), "Oh>O", None),
    (dict(group_type="full_octahedral", sub_group_type="cycle", subsampling_factor=12), "Oh>C4", None),
    (dict(group_type="full_octahedral", sub_group_type="dihedral", subsampling_factor=6), "Oh>D4", None),
    (dict(group_type="icosahedral", sub_group_type="cycle", subsampling_factor=12), "I>C5", None),
    (dict(group_type="full_icosahedral", sub_group_type="icosahedral", subsampling_factor=2), "Ih>I", None),
]


@pytest.mark.parametrize(("request_", "operator", "generators"), MAPPING, ids=[m[1] for m in MAPPING])
def test_every_documented_mapping(request_: dict, operator: str, generators: str | None) -> None:
    t = operator_for(**request_)
    assert str(t.operator) == operator and t.generators == generators
    assert t.operator.rate == request_.get("subsampling_factor", 1)
    doc = (Path(__file__).parents[1] / "docs" / "migrating.md").read_text(encoding="utf-8")
    assert f"`{operator}`" in doc, f"{operator} is not in the mapping table of docs/migrating.md"


@pytest.mark.parametrize(("group", "sub", "k"), [("cycle", "cycle", 2), ("cycle", "cycle", 3),
                                                 ("dihedral", "dihedral", 2), ("dihedral", "dihedral", 3), ("dihedral", "cycle", 2),
                                                 ("dihedral", "cycle", 4), ("dihedral", "cycle", 6)])
def test_where_the_research_rule_gives_a_subgroup_it_is_the_same_type(group: str, sub: str, k: int) -> None:
    """Its strided rules give a subgroup of the requested family and index for these factors (no warning of meaning)."""
    spec = GroupSpec.parse(("C" if group == "cycle" else "D") + "12")
    nodes = _reference_planar_nodes(spec, sub, k)
    assert nodes is not None and _is_subgroup(spec, nodes) and len(nodes) * k == spec.order
    t = operator_for(group, 12, sub, k)
    assert t.operator.subgroup.order == len(nodes)
    assert not any("subgroup order" in n for n in t.notes)


def test_octahedral_to_cycle_warns_about_the_research_codes_order() -> None:
    with pytest.warns(CompatWarning, match=r"samples the 4-fold rotations about z for every factor and reports the "
                                           r"subgroup order as 6; gscli samples C3 \(index 8, 3 elements\)"):
        layer = SubgroupDownsample(group_type="octahedral", sub_group_type="cycle", subsampling_factor=8,
                                   apply_antialiasing=True)
    assert str(layer.operator) == "O>C3" and layer.sub_order == 3
    out, _ = layer(torch.randn(3, 24, 2, 2, 2))
    assert out.shape == (3, 3, 2, 2, 2)


def test_full_octahedral_to_octahedral_warns_about_the_reported_order() -> None:
    with pytest.warns(CompatWarning, match=r"reports the subgroup order as 12 \(24 // factor\); O has 24 elements"):
        layer = SubgroupDownsample(group_type="full_octahedral", sub_group_type="octahedral", subsampling_factor=2)
    assert str(layer.operator) == "Oh>O" and layer.sub_order == 24


def test_no_unused_warning_without_optimiser_settings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SubgroupDownsample(group_type="cycle", order=8, subsampling_factor=2, apply_antialiasing=True)
    assert not [w for w in caught if issubclass(w.category, CompatWarning)]


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(group_type="dihedral", order=12, sub_group_type="cycle", subsampling_factor=3),
     r"D12 has no 'cycle' subgroup of index 3 \(C8\).*allowed factors for sub_group_type 'cycle': 2 \(C12\), 4 \(C6\), "
     r"6 \(C4\), 8 \(C3\), 12 \(C2\), 24 \(C1\); the research code would sample \{e, r, r\^2, r\^3, r\^4, r\^5, r\^6, "
     r"r\^7\}, which is not a subgroup"),
    (dict(group_type="dihedral", order=12, sub_group_type="cycle", subsampling_factor=1),
     r"no 'cycle' subgroup of index 1 \(C24\).*would sample all 24 elements, a subgroup of order 24, not a 'cycle' "
     r"subgroup of index 1"),
    (dict(group_type="dihedral", order=6, subsampling_factor=4),
     r"D6 has no 'dihedral' subgroup of index 4 \(of order 3\).*sample \{e, r\^4, r\^2 s\}, which is not a subgroup"),
    (dict(group_type="dihedral", order=6, subsampling_factor=5), r"subsampling_factor 5 does not divide \|D6\| = 12"),
    (dict(group_type="dihedral", order=12, subsampling_factor=8),
     r"no 'dihedral' subgroup of index 8 \(of order 3\).*sample \{e, r\^8, r\^4 s\}, which is not a subgroup"),
    (dict(group_type="octahedral", sub_group_type="cycle", subsampling_factor=4),
     r"O has no 'cycle' subgroup of index 4 \(C6\).*allowed factors for sub_group_type 'cycle': 6 \(C4\), 8 \(C3\), "
     r"12 \(C2\), 24 \(C1\)"),
    (dict(group_type="dihedrl", order=4), r"unknown group_type 'dihedrl'; allowed: 'cycle', 'cyclic', 'dihedral'"),
    (dict(group_type="dihedral", order=4, sub_group_type="adihedral"), r"unknown sub_group_type 'adihedral'"),
    (dict(group_type="dihedral", order=0), r"order 0 for group_type 'dihedral' must be a positive integer"),
    (dict(group_type="cycle", order=8, subsampling_factor=0), r"subsampling_factor 0 must be a positive integer"),
    (dict(group_type="cycle", order=8, sub_group_type="dihedral", subsampling_factor=2),
     r"C8 has no 'dihedral' subgroup of index 2 \(D2\).*allowed factors for sub_group_type 'dihedral': none"),
    (dict(group_type="dihedral", order=4, generator="r"), r"generators r generate C4 .*not D4"),
    (dict(group_type="cycle", order=4, sample_type="pool"), r"sample_type 'pool' is not supported; allowed: 'sample'"),
])
def test_impossible_requests_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(SubgroupError, match=message) as info:
        SubgroupDownsample(**kwargs)
    assert "\n" not in str(info.value)


def test_unknown_keywords_are_type_errors() -> None:
    with pytest.raises(TypeError, match="subsampling_factr"):
        SubgroupDownsample(group_type="cycle", order=4, subsampling_factr=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"anti_aliasing_kwargs got an unexpected keyword argument 'iteration'"):
        SubgroupDownsample(group_type="cycle", order=4, subsampling_factor=2, anti_aliasing_kwargs={"iteration": 5})
    with pytest.raises(TypeError, match="num_layer"):
        get_model(1, num_layer=2)  # type: ignore[call-arg]


def test_canonicalization_returns_elements_in_the_research_format_and_is_g_equivariant() -> None:
    layer = SubgroupDownsample(group_type="dihedral", order=4, sub_group_type="cycle", subsampling_factor=2,
                               apply_antialiasing=True, cannonicalize=True, dtype=torch.float64)
    g = layer.layer
    x_band = g.upsample(torch.randn(5, 4, dtype=torch.float64), torch.zeros(5, dtype=torch.int64))
    x_band = x_band + 0.01 * torch.arange(8, dtype=torch.float64)  # break ties: one clear maximum per sample
    out, elements = layer(x_band)
    assert out.shape == (5, 4) and len(elements) == 5
    assert all(isinstance(e, tuple) and len(e) == 2 and e[0] in (0, 1) and 0 <= e[1] < 4 for e in elements)
    round_trip = layer.upsample(out, elements)
    assert torch.equal(round_trip, layer.upsample(out))  # default: the elements of the last forward
    # G-equivariance of downsample -> upsample for a reflection (outside H = C4)
    table = __import__("gscli.groups", fromlist=["dihedral_table"]).dihedral_table(4)
    s = 4
    perm = torch.tensor(np.argsort(table[s]))  # (lambda(s) f)(x) = f(s^-1 x) = f(s x)
    shifted = x_band[:, perm]
    out_s, elements_s = layer(shifted)
    assert torch.allclose(layer.upsample(out_s, elements_s), round_trip[:, perm], atol=1e-12)
    with pytest.raises(SubgroupError, match="not this layer's coset representatives"):
        layer.upsample(out, [(0, 3)] * 5)


def test_a_single_signal_keeps_its_shape() -> None:
    layer = SubgroupDownsample(group_type="cycle", order=8, subsampling_factor=2, apply_antialiasing=True)
    out, _ = layer(torch.randn(8))
    assert out.shape == (4,) and layer.upsample(out).shape == (8,)


def test_plain_subsampling_is_the_research_default() -> None:
    layer = SubgroupDownsample(group_type="cycle", order=8, subsampling_factor=2)
    x = torch.randn(2, 8)
    assert torch.equal(layer(x)[0], x[:, layer.layer.subgroup_nodes])


def test_get_model_with_the_research_keywords_builds_a_gscli_group_cnn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = get_model(
            input_channel=1, num_channels=[2, 3], num_layers=2,
            dwn_group_types=[["dihedral", "dihedral"], ["dihedral", "cycle"]], init_group_order=4,
            subsampling_factors=[2, 2], spatial_subsampling_factors=[2, 1], num_classes=3, kernel_sizes=[3, 3],
            antialiasing_kwargs={"iterations": 100, "smoothness_loss_weight": 0.5}, dropout_rate=0.1,
            layer_kwargs={"dilation": 2},
        )
    unused = [w for w in caught if issubclass(w.category, UnusedKeywordWarning)]
    assert len(unused) == 1  # once for the model, not once per layer
    for item in ("antialiasing_kwargs['iterations']", "dropout_rate=0.1", "layer_kwargs={'dilation': 2}"):
        assert item in str(unused[0].message)
    from gscli.models import GroupCNN

    assert isinstance(model, GroupCNN)
    assert [str(layer.spec) for layer in model.downsampling_layers()] == ["D4>D2", "D2>C2"]
    x = torch.randn(2, 1, 9, 9)
    model.eval()
    with torch.no_grad():
        y = model(x)
        y_rot = model(torch.rot90(x, 2, dims=(2, 3)))  # 180 degrees lies in the last group C2
        y_other = model(torch.randn(2, 1, 13, 13))  # any side, as the research code's models
    assert y.shape == (2, 3) and y_other.shape == (2, 3)
    assert torch.allclose(y, y_rot, atol=1e-5)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(dwn_group_types=[["dihedral", "cycle"], ["dihedral", "dihedral"]], subsampling_factors=[2, 2]),
     r"dwn_group_types\[1\]\[0\] = 'dihedral' is not the group stage 1 receives \(C4\)"),
    (dict(domain=3), r"domain 3 is not supported"),
    (dict(subsampling_factors=[3, 1]), r"subsampling_factor 3 does not divide \|D4\| = 8"),
    (dict(num_channels=[4]), r"num_channels has 1 entries, but num_layers is 2"),
])
def test_get_model_refuses_what_cannot_be_built(kwargs: dict, message: str) -> None:
    with pytest.raises(SubgroupError, match=message):
        get_model(1, init_group_order=4, **kwargs)


@pytest.mark.slow
def test_readme_model_example_runs_unchanged() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # -- the research README's example, verbatim --
        model = get_model(
            input_channel=3,  # RGB input channels
            num_channels=[32, 64, 128],  # Feature channels per stage
            num_layers=3,     # Number of processing stages
            dwn_group_types=[
                ["dihedral", "dihedral"],  # [input_group, subgroup] for stage 1
                ["dihedral", "dihedral"],  # For stage 2
                ["dihedral", "dihedral"]   # For stage 3
            ],
            subsampling_factors=[2, 1, 1],  # Group reduction factors per stage
            spatial_subsampling_factors=[2, 1, 1],  # Spatial downsampling factors
            num_classes=10,    # STL-10 has 10 classes
            antialiasing_kwargs={
                "iterations": 100,  # number of optimization steps
                "smoothness_loss_weight": 0.5  # smoothness weight
            }
        )
        # -- end of the example --
    assert [str(layer.spec) for layer in model.downsampling_layers()] == ["D12>D6"]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 33, 33)).shape == (2, 10)


# -- the research code's users: its default calls, attributes and element formats ------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(num_layers=0), r"^num_layers = 0 must be an integer >= 1 \(the number of stages\)$"),
    (dict(num_layers="2"), r"^num_layers = str '2' must be an integer >= 1"),
    (dict(subsampling_factors=["2", 1]),
     r"^subsampling_factors\[0\] = str '2' must be a positive integer \(subsampling_factors = \['2', 1\]\)$"),
    (dict(subsampling_factors=2), r"^subsampling_factors = int 2 must be a list of 2 positive integers, one per stage"),
    (dict(num_channels=[8, 0]), r"^num_channels\[1\] = 0 must be a positive integer"),
    (dict(num_channels=[8, 2.5]), r"^num_channels\[1\] = float 2.5 must be a positive integer"),
    (dict(num_channels="32"), r"^num_channels = str '32' must be a list of 2 positive integers"),
    (dict(spatial_subsampling_factors=[1, None]), r"^spatial_subsampling_factors\[1\] = NoneType None must be a"),
    (dict(kernel_sizes=[4, 3]), r"^kernel_sizes\[0\] = 4 must be odd"),
    (dict(dwn_group_types=["dihedral", "dihedral"]),
     r"^dwn_group_types\[0\] = 'dihedral' must be \[group_type, sub_group_type\], two strings among 'cycle'"),
    (dict(dwn_group_types=[["dihedral"], ["dihedral", "dihedral"]]), r"^dwn_group_types\[0\] = \['dihedral'\] must be"),
    (dict(dwn_group_types=[["dihedral", "dihedral"]]), r"^dwn_group_types has 1 entries, but num_layers is 2$"),
    (dict(input_channel=0), r"^input_channel = 0 must be an integer >= 1$"),
    (dict(num_classes=1), r"^num_classes = 1 must be an integer >= 2$"),
    (dict(init_group_order=10**9), r"^order 1000000000 for group_type 'dihedral' is too large"),
])
def test_get_model_argument_errors_name_the_argument_and_what_is_allowed(kwargs: dict, message: str) -> None:
    """Wrong values, types and lengths are one-line ValueErrors naming the argument (not IndexError/TypeError)."""
    arguments = {"input_channel": 1, **kwargs}
    with pytest.raises(SubgroupError, match=message) as info:
        get_model(**arguments)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_get_model_takes_numpy_integers_as_the_research_code_does() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_model(np.int64(1), num_channels=[np.int64(1)], num_layers=np.int64(1), kernel_sizes=[3],
                          init_group_order=np.int32(2))
    assert str(model.config.group) == "D2" and model.config.stages[0].channels == 1


def _smallest_side(kernels: list[int], strides: list[int]) -> int:
    """Brute force: the least odd side that gscli's configuration rules accept for these stages."""
    side = 3
    while True:
        s, ok = side, True
        for kernel, stride in zip(kernels, strides):
            if kernel > s or (s - 1) % stride:
                ok = False
                break
            s = (s - 1) // stride + 1
        if ok:
            return side
        side += 2


@pytest.mark.parametrize(("kernels", "strides"), [([7, 7], [1, 1]), ([7, 7, 7], [2, 1, 1]), ([3], [1]),
                                                  ([1, 1], [1, 1]), ([3, 5, 7], [2, 2, 1]), ([5, 9], [3, 1]),
                                                  ([3, 3, 3], [1, 1, 4]), ([11, 3], [2, 3])])
def test_internal_side_is_the_least_side_the_configuration_accepts(kernels: list[int], strides: list[int]) -> None:
    from gscli.compat._model import _internal_side

    assert _internal_side(kernels, strides) == _smallest_side(kernels, strides)


def test_the_research_default_model_call_builds_and_takes_any_side() -> None:
    """The research code's test: get_model(input_channel=3, num_channels=[...]) with every other default.

    Default spatial factors 1 and kernel size 7 gave the internal side 8 (even), refused by the
    configuration although the user never gave a size. Fewer channels than the research test (speed);
    the defaults that chose the side are the same.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_model(input_channel=3, num_channels=[1, 2])
    model.eval()
    with torch.no_grad():
        for side in (32, 33, 8):
            x = torch.randn(1, 3, side, side)
            assert model(x).shape == (1, 10)
            assert model.get_feature(x).shape == (1, 2)


def test_get_model_default_group_is_d12_with_dihedral_stages() -> None:
    """The research defaults: dwn_group_types dihedral -> dihedral, init_group_order 12, so G = D12 (24 elements).

    Checked by what the model does, not only by its name: invariance under a flip (in D_N, not C_N)
    and under 30-degree-rotation-sized regular fields (24 channels per field after the lifting conv).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_model(input_channel=1, num_channels=[1, 1], kernel_sizes=[3, 3])
    assert str(model.config.group) == "D12" and str(model.final_group) == "D12"
    assert [b.group.order for b in model.block_specs] == [24, 24]
    model.eval()
    x = torch.randn(2, 1, 9, 9)
    with torch.no_grad():
        before, after, layers = model.get_hidden_feature(x)
        y, y_flip = model(x), model(torch.flip(x, dims=(3,)))
    assert before[0].shape == (2, 24, 9, 9) and layers == [None, None]
    assert torch.allclose(y, y_flip, atol=1e-5)


def test_get_feature_and_get_hidden_feature_follow_the_research_semantics() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_model(input_channel=1, num_channels=[2, 3], num_layers=2,
                          dwn_group_types=[["dihedral", "dihedral"], ["dihedral", "cycle"]], init_group_order=4,
                          subsampling_factors=[2, 1], spatial_subsampling_factors=[2, 1], kernel_sizes=[3, 3],
                          num_classes=5)
    model.eval()
    x = torch.randn(3, 1, 13, 13, requires_grad=True)
    before, after, layers = model.get_hidden_feature(x)
    assert len(before) == len(after) == len(layers) == 2
    assert before[0].shape == (3, 2 * 8, 7, 7) and after[0].shape == (3, 2 * 4, 7, 7)  # D4 (8) -> D2 (4), stride 2
    assert before[1].shape == after[1].shape == (3, 3 * 4, 7, 7) and layers[1] is None
    assert not any(t.requires_grad for t in before + after)  # detached copies, as the research code's
    assert torch.equal(after[1], before[1])
    with torch.no_grad():
        assert torch.equal(layers[0](before[0]), after[0])  # after = the stage's group downsampling of before
        feature = model.get_feature(x)
        # the research pooling, computed here: max over the last group (D2, 4 elements), then mean over space
        pooled = after[1].reshape(3, 3, 4, -1).amax(dim=2).mean(dim=2)
        assert torch.allclose(feature, pooled, atol=1e-6) and feature.shape == (3, 3)
        assert torch.allclose(model(x), model.head(feature), atol=1e-6)  # forward = head(get_feature)
    assert model.get_feature(x).requires_grad  # get_feature is differentiable (it is forward without the head)


def test_layers_and_models_report_their_device() -> None:
    layer = SubgroupDownsample(group_type="cycle", order=4, subsampling_factor=2)
    assert layer.device == torch.device("cpu")
    assert layer.to("meta").device.type == "meta"  # follows .to(), as the tensors do
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_model(input_channel=1, num_channels=[1], num_layers=1, kernel_sizes=[3], init_group_order=2)
    assert model.device == torch.device("cpu") and "image_size=any" in repr(model)
    x = torch.randn(1, 1, 5, 5, device=model.device)
    assert model(x).shape == (1, 10)


def test_too_large_orders_say_so() -> None:
    with pytest.raises(SubgroupError, match=r"^order 1000000000 for group_type 'cycle' is too large: C_1000000000 "
                                            r"has 1000000000 elements and gscli builds groups of at most 4096; "
                                            r"allowed: order 1 to 4096 for 'cycle'$"):
        SubgroupDownsample(group_type="cycle", order=10**9, subsampling_factor=2)
    with pytest.raises(SubgroupError, match=r"allowed: order 1 to 2048 for 'dihedral'$"):
        SubgroupDownsample(group_type="dihedral", order=2049)
    assert operator_for("dihedral", 2048, "dihedral", 1).operator.group.order == 4096  # the largest allowed


@pytest.mark.parametrize(("group_type", "order", "sub_group_type", "k"), [
    ("dihedral", 12, "dihedral", 2), ("dihedral", 12, "dihedral", 3), ("dihedral", 8, "dihedral", 4),
    ("dihedral", 12, "cycle", 2), ("dihedral", 12, "cycle", 4), ("dihedral", 6, "cycle", 6), ("cycle", 8, "cycle", 2),
])
def test_sub_order_is_the_research_codes(group_type: str, order: int, sub_group_type: str, k: int) -> None:
    """sub_order as the research code computes it (its layer and its layer tests): the next layer's ``order``."""
    research = order // k if group_type == sub_group_type else order // max(k // 2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompatWarning)  # another copy of H than the research code's: not checked here
        layer = SubgroupDownsample(group_type=group_type, order=order, sub_group_type=sub_group_type,
                                   subsampling_factor=k)
    assert layer.sub_order == research
    # and it is what the next layer needs: the same group H again
    following = SubgroupDownsample(group_type=sub_group_type, order=layer.sub_order)
    assert following.operator.group == GroupSpec.parse(str(layer.operator.subgroup))


@pytest.mark.parametrize(("order", "k"), [(4, 2), (6, 4), (6, 2)])
def test_canonicalization_element_is_the_research_codes_flip_rotation_pair(order: int, k: int) -> None:
    """(f, k) = (flip, rotation), read back by escnn as the element that was divided out of the input.

    Independent of gscli's own element numbering: escnn's ``element((f, k), 'int')`` and its regular
    representation give lambda(c^-1) x = x @ rho(c) (rows are signals); the canonicalized output
    must be the plain layer applied to that shifted input.
    """
    from escnn.group import dihedral_group

    group = dihedral_group(order)
    layer = SubgroupDownsample(group_type="dihedral", order=order, sub_group_type="cycle", subsampling_factor=k,
                               cannonicalize=True, dtype=torch.float64)
    plain_layer = SubgroupDownsample(group_type="dihedral", order=order, sub_group_type="cycle",
                                     subsampling_factor=k, dtype=torch.float64)
    x = torch.randn(64, 2 * order, dtype=torch.float64, generator=torch.Generator().manual_seed(order + k))
    out, elements = layer(x)
    assert len({tuple(e) for e in elements}) == k  # every coset occurs, so every representative is checked
    for i, element in enumerate(elements):
        rho = torch.as_tensor(group.regular_representation(group.element(tuple(element), "int")))
        assert torch.allclose(out[i], plain_layer(x[i:i + 1] @ rho)[0][0], atol=1e-12), element
