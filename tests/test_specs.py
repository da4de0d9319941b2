"""Specs are values: strict parsing, canonical printing, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gscli.errors import SpecError
from gscli.specs import GroupSpec, OperatorSpec, SubgroupSpec

groups = st.one_of(
    st.builds(lambda f, n: f"{f}{n}", st.sampled_from("CD"), st.integers(1, 999_999)),
    st.sampled_from(["O", "Oh", "I", "Ih"]),
)
subgroup_types = st.one_of(
    st.builds(lambda f, n, s: f"{f}{n}{s}", st.sampled_from("CD"), st.integers(2, 50), st.sampled_from(["", "h", "v", "d"]))
    .filter(lambda s: not (s.startswith("C") and s.endswith("d"))),
    st.builds(lambda n: f"S{2 * n}", st.integers(2, 30)),
    st.sampled_from(["C1", "D1", "Ci", "Cs", "T", "Td", "Th", "O", "Oh", "I", "Ih"]),
)


@given(groups)
def test_group_spec_round_trips(text: str) -> None:
    spec = GroupSpec.parse(text)
    assert str(spec) == text
    assert GroupSpec.parse(str(spec)) == spec
    assert hash(spec) == hash(GroupSpec.parse(text))


@given(subgroup_types)
def test_subgroup_spec_round_trips(text: str) -> None:
    spec = SubgroupSpec.parse(text)
    assert str(spec) == text and SubgroupSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "order"),
    [("C8", 8), ("D12", 24), ("O", 24), ("Oh", 48), ("I", 60), ("Ih", 120), ("C1", 1), ("D1", 2)],
)
def test_group_orders(text: str, order: int) -> None:
    assert GroupSpec.parse(text).order == order


@pytest.mark.parametrize(
    ("text", "order"),
    [("C4", 4), ("D6", 12), ("T", 12), ("Td", 24), ("Th", 24), ("D4h", 16), ("D3d", 12), ("C2v", 4),
     ("C4h", 8), ("S4", 4), ("S6", 6), ("Cs", 2), ("Ci", 2), ("O", 24), ("Ih", 120)],
)
def test_subgroup_orders_are_those_of_the_point_groups(text: str, order: int) -> None:
    assert SubgroupSpec.parse(text).order == order


@pytest.mark.parametrize("alias,canonical", [("C1h", "Cs"), ("C1v", "Cs"), ("S2", "Ci")])
def test_aliases_parse_to_the_canonical_type(alias: str, canonical: str) -> None:
    assert SubgroupSpec.parse(alias) == SubgroupSpec(canonical)


@pytest.mark.parametrize("text", ["", "C", "C0", "D-3", "c8", "X4", "O2", "Oh ", "C8.0", "C 8", "D12>D6", "Ｃ8", "C08"])
def test_malformed_group_specs_are_rejected_with_the_input_quoted(text: str) -> None:
    if text == "Oh ":  # surrounding whitespace is forgiven
        assert GroupSpec.parse(text) == GroupSpec("Oh")
        return
    with pytest.raises(SpecError) as info:
        GroupSpec.parse(text)
    assert repr(text.strip()) in str(info.value)
    assert "allowed" in str(info.value)


@pytest.mark.parametrize("text", ["S3", "C2d", "Q8", "D0", "Tx", ""])
def test_malformed_subgroup_specs_are_rejected(text: str) -> None:
    with pytest.raises(SpecError):
        SubgroupSpec.parse(text)


def test_operator_spec_forms_and_rate() -> None:
    a, b = OperatorSpec.parse("D12>D6"), OperatorSpec.parse("D12-D6")
    assert a == b and str(a) == "D12>D6" and a.stem == "D12-D6" and a.rate == 2
    assert OperatorSpec.parse(str(a)) == a
    with pytest.raises(SpecError, match="does not divide"):
        OperatorSpec.parse("D12>D5")
    with pytest.raises(SpecError, match="GROUP>SUBGROUP"):
        OperatorSpec.parse("D12>D6>C3")


@given(st.text(max_size=30))
def test_parsers_raise_only_spec_errors(text: str) -> None:
    for parse in (GroupSpec.parse, SubgroupSpec.parse, OperatorSpec.parse):
        try:
            value = parse(text)
        except SpecError:
            continue
        assert type(value).parse(str(value)) == value


def test_non_strings_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="must be a string"):
        GroupSpec.parse(8)
    for bad in (True, 0, -3, 2.0):
        with pytest.raises(SpecError, match="N must be an integer >= 1"):
            GroupSpec("C", bad)
