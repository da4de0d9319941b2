"""The runtime layer against escnn: joint spatial + fiber equivariance on exact grid transforms, interop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gscli.build import build
from gscli.fileformat import read_operator
from gscli.nn import Canonicalized, GroupDownsample, InputError

pytest.importorskip("escnn", reason="escnn interop and escnn's grid transforms need escnn")
from gscli._escnn import _escnn_group_module  # noqa: E402

_escnn_group_module()  # import escnn with gscli's cache redirect before escnn.nn / escnn.gspaces
from escnn import gspaces  # noqa: E402
from escnn import nn as enn  # noqa: E402

# operator -> (gspace of G, spatial shape). escnn's 3D transforms take ~0.1 s per element, so O_h
# cases test every third element of G (16 of 48); planar cases test every element.
EVERY = {"Oh>O": 3}
CASES = {
    "C8>C4": (lambda: gspaces.rot2dOnR2(8), (9, 9)),
    "D8>D4": (lambda: gspaces.flipRot2dOnR2(8), (9, 9)),
    "D12>D6": (lambda: gspaces.flipRot2dOnR2(12), (8, 8)),
    "D12>C12": (lambda: gspaces.flipRot2dOnR2(12), (8, 8)),
    "Oh>O": (lambda: gspaces.fullOctaOnR3(), (4, 5, 3)),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("operators")
    for name in list(CASES) + ["O>C3", "O>T"]:
        group, subgroup = name.split(">")
        build(group, subgroup=subgroup, out=folder)
    return folder


def path_of(store: Path, name: str) -> Path:
    return store / (name.replace(">", "-") + ".h5")


def sub_gspace(gspace, data):
    """escnn's gspace of H-fields, found independently of gscli.nn: restrict by the stored id, or O in O_h."""
    if data.attrs["group"] == "Oh":
        return gspaces.octaOnR3()
    escnn_id = json.loads(data.attrs["escnn_subgroup_id"])  # "[1, 6]" -> [1, 6]
    return gspace.restrict(tuple(escnn_id) if isinstance(escnn_id, list) else escnn_id)[0]


def grid_exact(gspace, element) -> bool:
    """True if the element moves grid points onto grid points (a signed permutation of the axes)."""
    a = np.asarray(gspace.basespace_action(element), dtype=np.float64)
    return bool(np.all(np.isclose(np.abs(a), 0) | np.isclose(np.abs(a), 1)) and np.allclose(np.abs(a).sum(0), 1))


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", list(CASES))
def test_forward_equivariant_under_exact_subgroup_transforms(store: Path, name: str) -> None:
    make, spatial = CASES[name]
    gspace = make()
    data = read_operator(path_of(store, name))
    h_space = sub_gspace(gspace, data)
    fields = 2
    in_type = enn.FieldType(gspace, [gspace.regular_repr] * fields)
    out_type = enn.FieldType(h_space, [h_space.regular_repr] * fields)
    layer = GroupDownsample.from_file(path_of(store, name))
    plain = GroupDownsample.from_file(path_of(store, name), antialias=False)
    x = torch.randn(2, in_type.size, *spatial, generator=torch.Generator().manual_seed(0))
    elements = list(gspace.fibergroup.elements)
    tested = 0
    for i, node in enumerate(data["subgroup_nodes"]):
        g, h = elements[int(node)], h_space.fibergroup.elements[i]
        if not grid_exact(gspace, g) or int(node) % EVERY.get(name, 1):
            continue
        gx = in_type.transform(x, g)
        for op in (layer, plain):
            err = relative(op(gx), out_type.transform(op(x), h))
            assert err <= 1e-5, f"{name} ({'antialias' if op is layer else 'plain'}): element {g} of H, error {err:.2e}"
        tested += 1
    assert tested >= 4, f"only {tested} exact elements of H tested"


def test_plain_subsampling_of_a_non_subgroup_breaks_equivariance(store: Path) -> None:
    """Negative control: sample D12 on 6 rotations + 6 reflections (not a subgroup) and read it as D6-fields."""
    gspace = gspaces.flipRot2dOnR2(12)
    data = read_operator(path_of(store, "D12>D6"))
    h_space = sub_gspace(gspace, data)
    in_type = enn.FieldType(gspace, [gspace.regular_repr] * 2)
    out_type = enn.FieldType(h_space, [h_space.regular_repr] * 2)
    bad_nodes = torch.tensor(list(range(6)) + list(range(12, 18)))
    assert sorted(bad_nodes.tolist()) != sorted(data["subgroup_nodes"].tolist())

    def subsample(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 2, 24, *x.shape[2:])[:, :, bad_nodes].reshape(x.shape[0], 24, *x.shape[2:])

    x = torch.randn(2, 48, 8, 8, generator=torch.Generator().manual_seed(1))
    elements = list(gspace.fibergroup.elements)
    worst = 0.0
    for i, node in enumerate(data["subgroup_nodes"]):
        g, h = elements[int(node)], h_space.fibergroup.elements[i]
        if grid_exact(gspace, g) and i != 0:
            worst = max(worst, relative(subsample(in_type.transform(x, g)), out_type.transform(subsample(x), h)))
    assert worst > 0.1


@pytest.mark.parametrize("name", ["D8>D4", "D12>D6", "Oh>O"])
def test_canonicalized_round_trip_equivariant_under_all_exact_group_transforms(store: Path, name: str) -> None:
    make, spatial = CASES[name]
    gspace = make()
    in_type = enn.FieldType(gspace, [gspace.regular_repr] * 2)
    canonical = GroupDownsample.from_file(path_of(store, name), canonicalize=True)
    plain = GroupDownsample.from_file(path_of(store, name))
    nodes = set(read_operator(path_of(store, name))["subgroup_nodes"].tolist())
    x = torch.randn(3, in_type.size, *spatial, generator=torch.Generator().manual_seed(2))
    round_trip = canonical.upsample(canonical(x))
    plain_trip = plain.upsample(plain(x))
    outside, worst_plain = 0, 0.0
    for index, g in enumerate(gspace.fibergroup.elements):
        if not grid_exact(gspace, g) or index % EVERY.get(name, 1):
            continue
        gx = in_type.transform(x, g)
        err = relative(canonical.upsample(canonical(gx)), in_type.transform(round_trip, g))
        assert err <= 1e-5, f"{name}: element {g}, error {err:.2e}"
        if index not in nodes:
            outside += 1
            worst_plain = max(worst_plain, relative(plain.upsample(plain(gx)), in_type.transform(plain_trip, g)))
    assert outside >= 2
    if name == "D12>D6":  # negative control; D8>D4's and O_h>O's projectors commute with all of G
        assert worst_plain > 1e-2


def test_geometric_tensor_in_geometric_tensor_out_and_r2conv_follows(store: Path) -> None:
    gspace = gspaces.flipRot2dOnR2(12)
    data = read_operator(path_of(store, "D12>D6"))
    h_space = sub_gspace(gspace, data)
    in_type = enn.FieldType(gspace, [gspace.regular_repr] * 2)
    out_type = enn.FieldType(h_space, [h_space.regular_repr] * 2)
    layer = GroupDownsample.from_file(path_of(store, "D12>D6"))
    x = enn.GeometricTensor(torch.randn(2, 48, 8, 8, generator=torch.Generator().manual_seed(3)), in_type)
    y = layer(x)
    assert isinstance(y, enn.GeometricTensor) and y.type == out_type
    assert torch.equal(y.tensor, layer(x.tensor))
    back = layer.upsample(y)
    assert isinstance(back, enn.GeometricTensor) and back.type == in_type
    assert torch.equal(back.tensor, layer.upsample(y.tensor))

    torch.manual_seed(0)
    conv = enn.R2Conv(out_type, out_type, kernel_size=3, padding=1)
    model = enn.SequentialModule(conv)
    model.eval()
    elements = list(gspace.fibergroup.elements)
    tested = 0
    for i, node in enumerate(data["subgroup_nodes"]):
        g, h = elements[int(node)], h_space.fibergroup.elements[i]
        if grid_exact(gspace, g):
            lhs = model(layer(x.transform(g))).tensor
            rhs = model(layer(x)).transform(h).tensor
            assert relative(lhs.detach(), rhs.detach()) <= 1e-5, f"R2Conv after the layer: element {h}"
            tested += 1
    assert tested >= 4


@pytest.mark.parametrize("name", ["C8>C4", "D12>D6", "D12>C12"])
def test_geometric_tensor_without_base_space(store: Path, name: str) -> None:
    data = read_operator(path_of(store, name))
    gspace = gspaces.no_base_space(CASES[name][0]().fibergroup)
    layer = GroupDownsample.from_file(path_of(store, name))
    field_type = enn.FieldType(gspace, [gspace.regular_repr] * 3)
    x = enn.GeometricTensor(torch.randn(5, field_type.size), field_type)
    y = layer(x)
    h_space = sub_gspace(gspace, data)
    assert y.type == enn.FieldType(h_space, [h_space.regular_repr] * 3)
    # fiber equivariance read through escnn's own representations of G and H
    for i, node in enumerate(data["subgroup_nodes"]):
        g, h = gspace.fibergroup.elements[int(node)], h_space.fibergroup.elements[i]
        assert relative(layer(x.transform(g)).tensor, y.transform(h).tensor) <= 1e-5, f"{name}: {h}"
    assert torch.equal(layer.upsample(y).tensor, layer.upsample(y.tensor))


def test_geometric_tensor_canonicalized_and_3d(store: Path) -> None:
    gspace = gspaces.fullOctaOnR3()
    in_type = enn.FieldType(gspace, [gspace.regular_repr])
    layer = GroupDownsample.from_file(path_of(store, "Oh>O"), canonicalize=True)
    x = enn.GeometricTensor(torch.randn(2, 48, 3, 3, 3, generator=torch.Generator().manual_seed(4)), in_type)
    out = layer(x)
    assert isinstance(out, Canonicalized) and isinstance(out.output, enn.GeometricTensor)
    o_space = gspaces.octaOnR3()
    assert out.output.type == enn.FieldType(o_space, [o_space.regular_repr])
    plain_out = layer(x.tensor)
    assert torch.equal(out.coset, plain_out.coset) and torch.equal(out.output.tensor, plain_out.output)
    back = layer.upsample(out)
    assert back.type == in_type and torch.equal(back.tensor, layer.upsample(plain_out))


def test_geometric_tensor_errors(store: Path) -> None:
    layer = GroupDownsample.from_file(path_of(store, "D12>D6"))
    d12 = gspaces.flipRot2dOnR2(12)
    trivial = enn.GeometricTensor(torch.randn(1, 2, 4, 4), enn.FieldType(d12, [d12.trivial_repr] * 2))
    with pytest.raises(InputError, match="holds irrep_0,0 fields; this layer .* takes only regular fields of D12"):
        layer(trivial)
    c8 = gspaces.rot2dOnR2(8)
    wrong_group = r"fiber group C8 \(order 8\); this layer \(D12>D6\) needs regular fields of D12"
    with pytest.raises(InputError, match=wrong_group):
        layer(enn.GeometricTensor(torch.randn(1, 8, 4, 4), enn.FieldType(c8, [c8.regular_repr])))
    fresh = GroupDownsample.from_file(path_of(store, "D12>D6"))
    d6 = d12.restrict((1, 6))[0]
    y = enn.GeometricTensor(torch.randn(1, 12, 4, 4), enn.FieldType(d6, [d6.regular_repr]))
    with pytest.raises(InputError, match="upsample does not know the gspace of D12-fields"):
        fresh.upsample(y)
    assert fresh.upsample(y, gspace=d12).type == enn.FieldType(d12, [d12.regular_repr])

    octa = gspaces.octaOnR3()
    x = enn.GeometricTensor(torch.randn(1, 24, 3, 3, 3), enn.FieldType(octa, [octa.regular_repr]))
    with pytest.raises(InputError, match=r"no escnn gspace of C3-fields matches this O>C3 operator .*escnn offers none"):
        GroupDownsample.from_file(path_of(store, "O>C3"))(x)
    with pytest.raises(InputError, match=r"no escnn gspace of T-fields .*escnn offers none.*x.tensor"):
        GroupDownsample.from_file(path_of(store, "O>T"))(x)
