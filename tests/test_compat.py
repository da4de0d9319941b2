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
    _is_subgroup,
    _reference_planar_nodes,
    get_model,
    operator_for,
)
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
