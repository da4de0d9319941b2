"""Point-group operators that escnn can continue on: the tie-break, the recorded gspace, GeometricTensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gscli.build import build, build_operator, candidates, choose
from gscli.fileformat import read_operator, write_operator
from gscli.nn import GroupDownsample, InputError
from gscli.specs import GroupSpec

pytest.importorskip("escnn", reason="escnn's 3-D gspaces are what these tests check against")
from gscli import _escnn, _gspaces3d  # noqa: E402

_escnn._escnn_group_module()  # escnn with gscli's cache redirect before escnn.nn / escnn.gspaces
from escnn import gspaces  # noqa: E402
from escnn import nn as enn  # noqa: E402

# operator -> escnn gspace of G, and the gspace its H-fields must land on (written out by hand).
SUPPORTED = {
    "O>C4": ("octaOnR3()", "rot2dOnR3(4)"),
    "O>D4": ("octaOnR3()", "dihedralOnR3(4)"),
    "O>C2": ("octaOnR3()", "rot2dOnR3(2)"),
    "Oh>D4h": ("fullOctaOnR3()", "fullCylindricalOnR3(4)"),
    "Oh>C4v": ("fullOctaOnR3()", "conicalOnR3(4)"),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("operators")
    for name in SUPPORTED:
        group, subgroup = name.split(">")
        build(group, subgroup=subgroup, out=folder)
    return folder


def path_of(store: Path, name: str) -> Path:
    return store / (name.replace(">", "-") + ".h5")


def old_rule(tied):
    """The rule before escnn copies were preferred: type name, then sorted element indices."""
    return min(tied, key=lambda c: (c.subgroup.type, c.subgroup.key))


@pytest.mark.parametrize(("group", "subgroup", "axis"), [("O", "C4", 2), ("O", "D4", 2), ("Oh", "D4h", 2)])
def test_tie_break_prefers_the_copy_escnn_has_a_gspace_for(group: str, subgroup: str, axis: int) -> None:
    pool = [c for c in candidates(GroupSpec.parse(group)) if c.subgroup.type == subgroup]
    chosen, tied = choose(pool)
    assert len(tied) == 3, f"the three {subgroup} of {group} (one per cube axis) tie on aliasing cost"
    # independent of the matching code: the rotations of escnn's C4/D4 gspaces turn about the z axis
    actions = _escnn.base_actions(_gspaces3d.gspace_of_group(group))
    proper = [i for i in chosen.subgroup.nodes if np.linalg.det(actions[i]) > 0]
    turns = [i for i in proper if not np.allclose(actions[i], np.eye(3))]
    fixed = [i for i in turns if np.allclose(actions[i][:, axis], np.eye(3)[:, axis])]
    assert len(fixed) == 3, f"{group}>{subgroup}: the chosen copy's 90/180/270-degree turns are not about z"
    assert chosen.subgroup.escnn_gspace is not None
    assert old_rule(tied) is not chosen, "the old rule already picks this copy: the test would not catch its removal"


def test_tie_break_prefers_escnn_subgroup_id_without_gspace() -> None:
    """C3 in O: escnn has no gspace for any copy, but O.subgroup((False, 3)) names one; it wins the tie."""
    pool = [c for c in candidates(GroupSpec.parse("O")) if c.subgroup.type == "C3"]
    chosen, tied = choose(pool)
    assert len(tied) == 4 and chosen.subgroup.escnn_id == (False, 3)
    assert old_rule(tied) is not chosen
    G = _escnn.escnn_group(GroupSpec.parse("O"))
    H, inclusion, _ = G.subgroup((False, 3))
    elements = list(G.elements)
    assert [elements.index(inclusion(h)) for h in H.elements] == chosen.subgroup.nodes.tolist()


def test_selection_sentence_and_file_name_the_gspace(store: Path) -> None:
    op = build_operator("O", rate=3)
    assert op.subgroup.type == "D4" and "escnn gspace of H: dihedralOnR3(4)" in op.selection
    data = read_operator(path_of(store, "O>C4"))
    assert data.attrs["escnn_gspace"] == "rot2dOnR3(4)" and data.attrs["escnn_subgroup_id"] == "[false, 4]"


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_geometric_tensor_transforms_under_the_restricted_gspace(store: Path, name: str) -> None:
    """For every h in H: layer(x transformed by h in G) == layer(x) transformed by h in escnn's H-gspace."""
    g_expr, h_expr = SUPPORTED[name]
    gspace, h_space = _gspaces3d.make(gspaces, g_expr), _gspaces3d.make(gspaces, h_expr)
    in_type = enn.FieldType(gspace, [gspace.regular_repr] * 2)
    x = enn.GeometricTensor(torch.randn(1, in_type.size, 3, 3, 3, generator=torch.Generator().manual_seed(0)),
                            in_type)
    layer = GroupDownsample.from_file(path_of(store, name))
    y = layer(x)
    assert isinstance(y, enn.GeometricTensor) and y.type == enn.FieldType(h_space, [h_space.regular_repr] * 2)
    assert torch.equal(y.tensor, layer(x.tensor))
    nodes = layer.subgroup_nodes.tolist()
    for i, h in enumerate(h_space.fibergroup.elements):
        g = gspace.fibergroup.elements[nodes[i]]
        err = relative(layer(x.transform(g)).tensor, y.transform(h).tensor)
        assert err <= 1e-5, f"{name}: element {h} of {h_expr} (G index {nodes[i]}): error {err:.2e}"
    back = layer.upsample(y)
    assert back.type == in_type


def test_wrong_element_order_is_refused_or_caught(store: Path) -> None:
    """Negative controls: swap r and r^3 of O>C4; escnn's gspace no longer matches, and reading the
    correct output with h^-1 instead of h breaks the transformation law."""
    data = read_operator(path_of(store, "O>C4"))
    octa = gspaces.octaOnR3()
    in_type = enn.FieldType(octa, [octa.regular_repr])
    x = enn.GeometricTensor(torch.randn(1, 24, 3, 3, 3, generator=torch.Generator().manual_seed(1)), in_type)
    swapped = data["subgroup_nodes"][[0, 3, 2, 1]]
    layer = GroupDownsample(data["downsample"][[0, 3, 2, 1]], data["upsample"][:, [0, 3, 2, 1]], swapped,
                            data["group_cayley"], data["subgroup_cayley"], group="O", subgroup="C4",
                            escnn_gspace="rot2dOnR3(4)")
    with pytest.raises(InputError, match=r"no escnn gspace of C4-fields .*tried C4_on_R3"):
        layer(x)
    good = GroupDownsample.from_operator(data)
    y, r = good(x), good._escnn_cache[octa.name].fibergroup.elements[1]
    g = octa.fibergroup.elements[int(data["subgroup_nodes"][1])]
    assert relative(good(x.transform(g)).tensor, y.transform(r).tensor) <= 1e-5
    assert relative(good(x.transform(g)).tensor, y.transform(~r).tensor) > 0.1


def test_format2_file_without_escnn_gspace_still_reads_and_interoperates(store: Path, tmp_path: Path) -> None:
    data = read_operator(path_of(store, "O>D4"))
    attrs = {k: v for k, v in data.attrs.items()
             if k not in ("escnn_gspace", "checksum", "format", "format_version", "numpy_version", "h5py_version")}
    old = tmp_path / "O-D4.h5"
    write_operator(old, dict(data.arrays), attrs)
    again = read_operator(old)
    assert "escnn_gspace" not in again.attrs
    layer = GroupDownsample.from_operator(again)
    assert layer.escnn_gspace is None  # not recorded: the layer searches escnn's gspaces of order |H|
    octa = gspaces.octaOnR3()
    x = enn.GeometricTensor(torch.randn(1, 24, 3, 3, 3), enn.FieldType(octa, [octa.regular_repr]))
    assert layer(x).type.gspace.name == gspaces.dihedralOnR3(4).name  # found by searching escnn's D4 gspaces


def test_parse_gspace_expressions() -> None:
    assert _gspaces3d.parse("fullCylindricalOnR3(4)") == ("fullCylindricalOnR3", 4)
    assert _gspaces3d.order("fullCylindricalOnR3(4)") == 16 and _gspaces3d.order("octaOnR3()") == 24
    for bad in ("os.system(1)", "rot2dOnR3()", "octaOnR3(2)", "rot2dOnR3(4); x", 4):
        with pytest.raises(ValueError):
            _gspaces3d.parse(bad)  # type: ignore[arg-type]
