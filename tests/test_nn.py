"""The runtime layer gscli.nn.GroupDownsample against dense float64 references and its laws."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from gscli.build import build
from gscli.errors import FormatError, SpecError, StoreError
from gscli.fileformat import _seal, read_operator
from gscli.nn import Canonicalized, GroupDownsample, InputError, OperatorBuiltWarning

OPERATORS = ["C8>C4", "C6>C3", "D8>D4", "D12>D6", "Oh>O"]
SPATIAL = [(), (5,), (4, 3), (3, 2, 2)]
# H not normal in G: left cosets c H and right cosets H c differ, so canonicalization must use the left ones
NON_NORMAL = ["D8>D1", "O>C4"]


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("operators")
    for name in OPERATORS + NON_NORMAL + ["D12>C12"]:
        group, subgroup = name.split(">")
        build(group, subgroup=subgroup, out=folder)
    return folder


def path_of(store: Path, name: str) -> Path:
    return store / (name.replace(">", "-") + ".h5")


def group_perm(cayley: np.ndarray, g: int) -> np.ndarray:
    """Index map of lambda(g) on signals: (lambda(g) f)[x] = f[g^{-1} x], as f[perm]."""
    e = int(np.nonzero((cayley == np.arange(len(cayley))).all(axis=1))[0][0])
    inverse = int(np.nonzero(cayley[g] == e)[0][0])
    return cayley[inverse]


def fiber(x: torch.Tensor, order: int) -> torch.Tensor:
    """(batch, C*order, *spatial) -> (batch, C, order, *spatial)."""
    return x.reshape(x.shape[0], x.shape[1] // order, order, *x.shape[2:])


def dense(matrix: np.ndarray, x: torch.Tensor) -> np.ndarray:
    """The obviously correct reference: matrix on the group axis, in float64 numpy."""
    q = matrix.shape[1]
    xf = fiber(x, q).double().numpy()
    y = np.einsum("ij,bcj...->bci...", matrix, xf)
    return y.reshape(y.shape[0], -1, *y.shape[3:])


def rel(a: torch.Tensor | np.ndarray, ref: np.ndarray) -> float:
    a = a.double().numpy() if isinstance(a, torch.Tensor) else a
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def bandlimited(data, batch: int, fields: int, spatial: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Fields whose group values lie in V (the span of the file's orthonormal basis B)."""
    basis = torch.from_numpy(data["basis"])  # (n, m)
    z = torch.randn(batch, fields, basis.shape[1], *spatial, generator=gen, dtype=torch.float64)
    x = torch.einsum("nm,bcm...->bcn...", basis, z)
    return x.reshape(batch, fields * basis.shape[0], *spatial)


# -- agreement with the dense float64 product ------------------------------------------------------


@pytest.mark.parametrize("spatial", SPATIAL, ids=lambda s: f"rank{len(s)}")
@pytest.mark.parametrize("name", OPERATORS)
def test_forward_and_upsample_equal_dense_product(store: Path, name: str, spatial: tuple[int, ...]) -> None:
    data = read_operator(path_of(store, name))
    layer = GroupDownsample.from_file(path_of(store, name))
    n, m = data["downsample"].shape[1], data["downsample"].shape[0]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2 * n, *spatial, generator=gen, dtype=torch.float64)
    y = torch.randn(3, 2 * m, *spatial, generator=gen, dtype=torch.float64)
    ref_down, ref_up = dense(data["downsample"], x), dense(data["upsample"], y)
    out = layer(x)
    assert out.dtype == torch.float64 and out.shape == (3, 2 * m, *spatial)
    assert np.abs(out.numpy() - ref_down).max() <= 1e-12 * np.abs(x.numpy()).max()
    assert np.abs(layer.upsample(y).numpy() - ref_up).max() <= 1e-12 * np.abs(ref_up).max()
    out32 = layer(x.float())
    assert out32.dtype == torch.float32
    assert rel(out32, ref_down) <= 1e-6, name
    assert rel(layer.upsample(y.float()), ref_up) <= 1e-6, name


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 4e-3), (torch.bfloat16, 3e-2)])
def test_half_precision_inputs(store: Path, dtype: torch.dtype, tol: float) -> None:
    data = read_operator(path_of(store, "D12>D6"))
    layer = GroupDownsample.from_file(path_of(store, "D12>D6"))
    x = torch.randn(2, 48, 4, 4, generator=torch.Generator().manual_seed(1)).to(dtype)
    out = layer(x)
    assert out.dtype == dtype
    assert rel(out, dense(data["downsample"], x)) <= tol
    assert layer.operator_down.dtype == torch.float64


def test_cyclic_layer_is_fft_lowpass_then_sampling(store: Path) -> None:
    """Independent reference: torch.fft low-pass (keep |k| < M/2 and Re X[M/2]) then every R-th sample."""
    for name, n, rate in (("C8>C4", 8, 2), ("C6>C3", 6, 2)):
        m = n // rate
        layer = GroupDownsample.from_file(path_of(store, name))
        x = torch.randn(5, 3 * n, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        spectrum = torch.fft.fft(fiber(x, n), dim=2)
        k = torch.fft.fftfreq(n, d=1.0 / n).abs().reshape(1, 1, n, 1)
        kept = torch.where(k < m / 2, spectrum, torch.zeros_like(spectrum))
        if m % 2 == 0:
            nyquist = (spectrum[:, :, m // 2] + spectrum[:, :, -(m // 2)]) / 2
            kept[:, :, m // 2] = nyquist
            kept[:, :, -(m // 2)] = nyquist
        expected = torch.fft.ifft(kept, dim=2).real[:, :, ::rate].reshape(5, 3 * m, 7)
        assert (layer(x) - expected).abs().max() <= 1e-12, name


@pytest.mark.parametrize("name", OPERATORS)
def test_upsample_inverts_forward_on_bandlimited_fields(store: Path, name: str) -> None:
    data = read_operator(path_of(store, name))
    gen = torch.Generator().manual_seed(3)
    for antialias in (True, False):
        layer = GroupDownsample.from_file(path_of(store, name), antialias=antialias)
        x = bandlimited(data, 2, 3, (4, 4), gen)
        assert (layer.upsample(layer(x)) - x).abs().max() <= 1e-11 * x.abs().max(), (name, antialias)
        assert rel(layer.upsample(layer(x.float())), x.numpy()) <= 1e-5
    # not bandlimited: the round trip is the projection P, which changes a generic signal
    x = torch.randn(2, 3 * data["antialias"].shape[0], 4, 4, generator=gen, dtype=torch.float64)
    layer = GroupDownsample.from_file(path_of(store, name))
    assert np.abs(layer.upsample(layer(x)).numpy() - dense(data["antialias"], x)).max() <= 1e-11 * x.abs().max().item()
    assert (layer.upsample(layer(x)) - x).abs().max() > 1e-3


def test_plain_subsampling_takes_the_subgroup_values(store: Path) -> None:
    data = read_operator(path_of(store, "D12>D6"))
    layer = GroupDownsample.from_file(path_of(store, "D12>D6"), antialias=False)
    x = torch.randn(2, 3 * 24, 5, generator=torch.Generator().manual_seed(4))
    expected = fiber(x, 24)[:, :, torch.from_numpy(data["subgroup_nodes"])].reshape(2, 36, 5)
    assert torch.equal(layer(x), expected)
    assert "antialias=False" in repr(layer)


# -- equivariance on the fibers (every element) ----------------------------------------------------


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("name", OPERATORS)
def test_forward_commutes_with_every_subgroup_element(store: Path, name: str, dtype: torch.dtype, tol: float) -> None:
    data = read_operator(path_of(store, name))
    nodes, cayley_g, cayley_h = data["subgroup_nodes"], data["group_cayley"], data["subgroup_cayley"]
    n, m = len(cayley_g), len(nodes)
    layer = GroupDownsample.from_file(path_of(store, name))
    x = torch.randn(4, 2 * n, 3, generator=torch.Generator().manual_seed(5), dtype=dtype)
    y = layer(x)
    for i, g in enumerate(nodes):
        gx = fiber(x, n)[:, :, torch.from_numpy(group_perm(cayley_g, int(g)))].reshape(x.shape)
        hy = fiber(y, m)[:, :, torch.from_numpy(group_perm(cayley_h, i))].reshape(y.shape)
        assert (layer(gx) - hy).abs().max() <= tol * y.abs().max(), f"{name}: element {i} of H (g_{g})"


def _canonical_reference(data, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, in plain numpy loops: argmax of the field-and-space sum, its coset, D lambda(c^-1) x."""
    cayley, nodes, down = data["group_cayley"], data["subgroup_nodes"], data["downsample"]
    n = len(cayley)
    xf = fiber(x, n).double().numpy()
    pooled = xf.reshape(xf.shape[0], xf.shape[1], n, -1).sum(axis=(1, 3))
    outputs, reps = [], []
    for b in range(x.shape[0]):
        a = int(np.argmax(pooled[b]))
        coset = {int(cayley[a, h]) for h in nodes}
        e = int(np.nonzero((cayley == np.arange(n)).all(axis=1))[0][0])
        rep = e if e in coset else min(coset)
        shifted = xf[b][:, group_perm(cayley, int(np.nonzero(cayley[rep] == e)[0][0]))]  # lambda(rep^-1) x
        outputs.append(np.einsum("ij,cj...->ci...", down, shifted))
        reps.append(rep)
    y = np.stack(outputs)
    return y.reshape(y.shape[0], -1, *y.shape[3:]), np.array(reps)


@pytest.mark.parametrize("name", ["C8>C4", "D12>D6", "Oh>O", *NON_NORMAL])
def test_canonicalized_forward_matches_per_sample_reference(store: Path, name: str) -> None:
    data = read_operator(path_of(store, name))
    layer = GroupDownsample.from_file(path_of(store, name), canonicalize=True)
    n = len(data["group_cayley"])
    x = torch.randn(16, 2 * n, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    out = layer(x)
    assert isinstance(out, Canonicalized)
    expected, reps = _canonical_reference(data, x)
    assert np.abs(out.output.numpy() - expected).max() <= 1e-12 * x.abs().max().item()
    assert layer.coset_representatives[out.coset].tolist() == reps.tolist()
    assert len(set(out.coset.tolist())) > 1  # the test exercises more than the identity coset
    assert int(layer.coset_representatives[0]) == int(data.attrs["group_identity"])


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("name", ["C8>C4", "D12>D6", "Oh>O", *NON_NORMAL])
def test_canonicalized_round_trip_commutes_with_all_of_g(
    store: Path, name: str, dtype: torch.dtype, tol: float
) -> None:
    data = read_operator(path_of(store, name))
    cayley = data["group_cayley"]
    n = len(cayley)
    canonical = GroupDownsample.from_file(path_of(store, name), canonicalize=True)
    plain = GroupDownsample.from_file(path_of(store, name))
    gen = torch.Generator().manual_seed(7)
    in_h = set(data["subgroup_nodes"].tolist())
    generic = torch.randn(6, 2 * n, 3, generator=gen, dtype=torch.float64).to(dtype)
    kinds = [("generic", generic), ("bandlimited", bandlimited(data, 6, 2, (3,), gen).to(dtype))]
    if name == "D8>D1":  # V holds f with f(r^2) = f(r^3) = f(r^2 s) = f(r^3 s): exact ties across cosets (documented)
        kinds = kinds[:1]
    for kind, x in kinds:
        out_x = canonical(x)
        round_trip = canonical.upsample(out_x)
        worst_plain = 0.0
        for g in range(n):
            act = torch.from_numpy(group_perm(cayley, g))
            gx = fiber(x, n)[:, :, act].reshape(x.shape)
            out = canonical(gx)
            expected = fiber(round_trip, n)[:, :, act].reshape(x.shape)
            assert (canonical.upsample(out) - expected).abs().max() <= tol * x.abs().max(), f"{name} {kind}: g_{g}"
            if kind == "generic":  # bandlimited O_h>O signals are -I-invariant: exact ties, either coset is right
                moved = canonical._coset_of[torch.from_numpy(cayley[g])[canonical.coset_representatives[out_x.coset]]]
                assert torch.equal(out.coset, moved), f"{name}: the coset does not move with g_{g}"
            if g not in in_h:
                plain_expected = fiber(plain.upsample(plain(x)), n)[:, :, act].reshape(x.shape)
                worst_plain = max(worst_plain, float((plain.upsample(plain(gx)) - plain_expected).abs().max()))
        if name == "Oh>O":  # P = (I + lambda(-I))/2 is central: the plain round trip already commutes with O_h
            assert worst_plain <= tol * x.abs().max().item()
        else:  # negative control: without canonicalization, elements outside H break the commutation
            assert worst_plain > 1e-2 * x.abs().max().item(), kind


def test_canonical_field_selects_the_pooled_field(store: Path) -> None:
    layer = GroupDownsample.from_file(path_of(store, "C8>C4"), canonicalize=True, canonical_field=1)
    x = torch.zeros(2, 3 * 8, 4, dtype=torch.float64)
    x[0, 1 * 8 + 3] = 1.0  # field 1 peaks at r^3 (odd coset), field 0 at r^0
    x[0, 0 * 8 + 0] = 5.0
    x[1, 1 * 8 + 2] = 1.0  # field 1 peaks at r^2 (coset H)
    x[1, 0 * 8 + 1] = 5.0
    assert layer(x).coset.tolist() == [1, 0]
    pooled_all = GroupDownsample.from_file(path_of(store, "C8>C4"), canonicalize=True)
    assert pooled_all(x).coset.tolist() == [0, 1]  # summed over fields, field 0 dominates
    with pytest.raises(InputError, match="canonical_field 1 is not one of the input's 1 fields"):
        layer(torch.randn(2, 8, 4))


# -- autograd, dtype/device moves, state_dict ---------------------------------------------------------


@pytest.mark.parametrize("canonicalize", [False, True])
def test_gradcheck(store: Path, canonicalize: bool) -> None:
    layer = GroupDownsample.from_file(path_of(store, "D8>D4"), canonicalize=canonicalize)
    x = torch.randn(2, 16, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 8, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64, requires_grad=True)
    if canonicalize:
        coset = layer(x).coset
        assert torch.autograd.gradcheck(lambda t: layer(t).output, (x,))
        assert torch.autograd.gradcheck(lambda t: layer.upsample(t, coset), (y,))
    else:
        assert torch.autograd.gradcheck(layer, (x,))
        assert torch.autograd.gradcheck(layer.upsample, (y,))


def test_to_keeps_float64_operators_and_exactness(store: Path) -> None:
    data = read_operator(path_of(store, "D12>D6"))
    layer = GroupDownsample.from_file(path_of(store, "D12>D6"), canonicalize=True)
    x = torch.randn(3, 48, 2, 2, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    layer.float(); layer(x.float())  # fills the float32 cache
    layer.half()
    layer.to(torch.bfloat16)
    layer.to("cpu", torch.float32)
    assert all(getattr(layer, b).dtype == torch.float64 for b in ("operator_down", "operator_up", "_down_stack"))
    assert torch.equal(layer.operator_down, torch.from_numpy(data["downsample"]))
    out = layer(x)
    expected, _ = _canonical_reference(data, x)
    assert np.abs(out.output.numpy() - expected).max() <= 1e-12 * x.abs().max().item()
    with pytest.raises(InputError, match="input is on meta but the layer is on cpu"):
        layer(torch.empty(1, 48, device="meta"))


def test_state_dict_round_trip(store: Path) -> None:
    layer = GroupDownsample.from_file(path_of(store, "D12>D6"))
    model = torch.nn.Sequential(torch.nn.Identity(), layer)
    state = model.state_dict()
    assert set(state) == {"1.operator_down", "1.operator_up", "1.subgroup_nodes", "1._extra_state"}
    assert state["1.operator_down"].dtype == torch.float64
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    canonical = GroupDownsample.from_file(path_of(store, "D12>D6"), canonicalize=True)
    fresh = torch.nn.Sequential(torch.nn.Identity(), canonical)
    x = torch.randn(2, 48, 3, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    before = fresh(x)
    doubled = dict(loaded)
    doubled["1.operator_down"] = 2 * loaded["1.operator_down"]
    fresh.load_state_dict(doubled)  # the checkpoint's operators replace the file's, derived tables follow
    after = fresh(x)
    assert torch.equal(after.coset, before.coset)
    assert (after.output - 2 * before.output).abs().max() <= 1e-12 * x.abs().max()
    fresh.load_state_dict(loaded)
    assert torch.equal(fresh(x).output, before.output)

    other = torch.nn.Sequential(torch.nn.Identity(), GroupDownsample.from_file(path_of(store, "D12>C12")))
    with pytest.raises(FormatError, match=r"checkpoint holds D12>D6 operators, but this layer applies D12>C12"):
        other.load_state_dict(loaded)
    smaller = torch.nn.Sequential(torch.nn.Identity(), GroupDownsample.from_file(path_of(store, "C8>C4")))
    with pytest.raises((RuntimeError, FormatError), match="D12>D6|size mismatch"):
        smaller.load_state_dict(loaded)


def test_deepcopy_and_pickle_give_the_same_layer(store: Path) -> None:
    import copy
    import pickle

    layer = GroupDownsample.from_file(path_of(store, "C8>C4"), canonicalize=True)
    x = torch.randn(4, 16, 3, generator=torch.Generator().manual_seed(13))
    out = layer(x)
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert clone is not layer
        assert torch.equal(clone(x).output, out.output) and torch.equal(clone(x).coset, out.coset)
        assert torch.equal(clone.upsample(out), layer.upsample(out))


def test_extra_repr_names_the_operator(store: Path) -> None:
    layer = GroupDownsample.from_file(path_of(store, "D12>D6"), fields=4, canonicalize=True, canonical_field=2)
    text = repr(layer)
    for part in ("group=D12", "subgroup=D6", "rate=2", "fields=4", "canonicalize=True", "canonical_field=2",
                 f"source={str(path_of(store, 'D12>D6'))!r}"):
        assert part in text, (part, text)


# -- bad input --------------------------------------------------------------------------------------


def test_wrong_inputs_raise_with_what_was_expected(store: Path) -> None:
    layer = GroupDownsample.from_file(path_of(store, "D12>D6"), fields=2)
    cases = [
        (torch.randn(2, 50, 3), r"expects channels C\*\|D12\| = C\*24 .*got 50 channels in shape \(2, 50, 3\)"),
        (torch.randn(2, 72, 3), r"expects 2 fields of \|D12\| = 24: 48 channels, got 72"),
        (torch.randn(48), r"0 to 3 spatial dimensions .*got shape \(48,\) \(1 dimensions\)"),
        (torch.randn(1, 48, 2, 2, 2, 2), r"got shape \(1, 48, 2, 2, 2, 2\) \(6 dimensions\)"),
        (torch.ones(2, 48, 3, dtype=torch.int64), r"floating tensor .* got torch.int64"),
        (torch.ones(2, 48, dtype=torch.complex64), r"got torch.complex64"),
        ([[0.0] * 48], r"expects a torch.Tensor .* got list"),
    ]
    for bad, message in cases:
        with pytest.raises(InputError, match=message):
            layer(bad)
    with pytest.raises(InputError, match=r"upsample expects channels C\*\|D6\| = C\*12 .*got 13"):
        layer.upsample(torch.randn(2, 13))
    with pytest.raises(InputError, match="takes no coset"):
        layer.upsample(torch.randn(2, 24), torch.zeros(2, dtype=torch.int64))


def test_canonical_upsample_needs_a_valid_coset(store: Path) -> None:
    layer = GroupDownsample.from_file(path_of(store, "C8>C4"), canonicalize=True)
    y = torch.randn(3, 8)
    with pytest.raises(InputError, match="needs the coset forward returned"):
        layer.upsample(y)
    with pytest.raises(InputError, match=r"int64 tensor of shape \(3,\), got torch.float32 tensor of shape \(3,\)"):
        layer.upsample(y, torch.zeros(3))
    with pytest.raises(InputError, match=r"shape \(3,\), got torch.int64 tensor of shape \(2,\)"):
        layer.upsample(y, torch.zeros(2, dtype=torch.int64))
    with pytest.raises(InputError, match=r"coset indices must lie in 0..1, got \[0, 2, 0\]"):
        layer.upsample(y, torch.tensor([0, 2, 0]))
    out = layer(torch.randn(3, 16))
    with pytest.raises(InputError, match="not both"):
        layer.upsample(out, out.coset)


def test_bad_options_and_non_subgroup_operators(store: Path) -> None:
    data = read_operator(path_of(store, "C8>C4"))
    with pytest.raises(InputError, match="fields must be a non-negative integer or None, got 2.5"):
        GroupDownsample.from_operator(data, fields=2.5)
    with pytest.raises(InputError, match="canonical_field is only used with canonicalize=True"):
        GroupDownsample.from_operator(data, canonical_field=0)
    with pytest.raises(InputError, match=r"canonical_field 3 is not one of the 2 fields \(0..1\)"):
        GroupDownsample.from_operator(data, fields=2, canonicalize=True, canonical_field=3)
    arrays = {k: data[k] for k in ("downsample", "upsample", "subgroup_nodes", "group_cayley", "subgroup_cayley")}
    not_a_subgroup = dict(arrays, subgroup_nodes=np.array([0, 1, 2, 3]))
    with pytest.raises(FormatError, match="not a homomorphism .* do not form the subgroup C4"):
        GroupDownsample(*not_a_subgroup.values(), group="C8", subgroup="C4")
    with pytest.raises(FormatError, match=r"downsample has shape \(8, 4\), expected \(4, 8\)"):
        GroupDownsample(*dict(arrays, downsample=arrays["downsample"].T).values(), group="C8", subgroup="C4")
    with pytest.raises(SpecError):
        GroupDownsample(*arrays.values(), group="C8", subgroup="C3")


def test_non_finite_values_pass_through(store: Path) -> None:
    data = read_operator(path_of(store, "D12>D6"))
    for canonicalize in (False, True):
        layer = GroupDownsample.from_file(path_of(store, "D12>D6"), canonicalize=canonicalize)
        x = torch.randn(2, 48, 3, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
        x[0, 5, 1] = float("nan")  # field 0 at position 1 of sample 0
        x[1, 30, 2] = float("inf")  # field 1 at position 2 of sample 1
        out = layer(x)
        y = out.output if canonicalize else out
        bad = ~torch.isfinite(fiber(y, 12))
        assert bad[0, 0, :, 1].all() and bad[1, 1, :, 2].all()
        assert int(bad.sum()) == 24  # everything else stays finite
        if not canonicalize:
            finite = x.clone()
            finite[0, 5, 1] = 0.0
            finite[1, 30, 2] = 0.0
            keep = torch.isfinite(fiber(y, 12))
            reference = fiber(torch.from_numpy(dense(data["downsample"], finite)), 12)
            assert np.allclose(fiber(y, 12)[keep].numpy(), reference[keep].numpy(), atol=1e-12)


# -- files and the store ------------------------------------------------------------------------------


def test_unusable_files_raise_format_error(store: Path, tmp_path: Path) -> None:
    source = path_of(store, "C8>C4")
    with pytest.raises(FormatError, match="no such operator file"):
        GroupDownsample.from_file(tmp_path / "missing.h5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(FormatError, match="truncated"):
        GroupDownsample.from_file(truncated)
    text = tmp_path / "notes.h5"
    text.write_text("not an operator")
    with pytest.raises(FormatError, match="not a gscli operator file"):
        GroupDownsample.from_file(text)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(FormatError, match="an HDF5 file without a gscli header"):
        GroupDownsample.from_file(foreign)
    newer = tmp_path / "newer.h5"
    shutil.copy(source, newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = 99
    _seal(newer)  # a well-formed file from a future gscli
    with pytest.raises(FormatError, match="format_version 99 is newer than this gscli reads .*upgrade"):
        GroupDownsample.from_file(newer)
    damaged = tmp_path / "damaged.h5"
    shutil.copy(source, damaged)
    with h5py.File(damaged, "r+") as f:
        f["downsample"][0, 0] += 1.0
    with pytest.raises(FormatError, match="damaged: the file's sha256 is"):
        GroupDownsample.from_file(damaged)


def test_from_catalog_loads_builds_or_explains(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = GroupDownsample.from_catalog("C6-C3", store=store)  # not shipped: from the store
    assert layer.spec.group.order == 6 and layer.source == str(path_of(store, "C6>C3"))
    monkeypatch.setenv("GSCLI_STORE", str(store))
    assert GroupDownsample.from_catalog("C6>C3").source == str(path_of(store, "C6>C3"))
    assert GroupDownsample.from_catalog("D12>D6").source.endswith("gscli/catalog/D12-D6.h5")  # shipped first
    with pytest.raises(SpecError):
        GroupDownsample.from_catalog("D12/D6", store=store)

    empty = tmp_path / "empty"
    with pytest.raises(FormatError, match=r"no operator file for D4>C2 .*gscli build D4 --subgroup C2 --out"):
        GroupDownsample.from_catalog("D4>C2", store=empty, build=False)
    monkeypatch.setattr("gscli.nn._source.escnn_available", lambda: False)
    no_escnn = r"escnn \(needed to build one\) is not installed.*gscli build D4 --subgroup C2"
    with pytest.raises(FormatError, match=no_escnn):
        GroupDownsample.from_catalog("D4>C2", store=empty)
    assert not (empty / "D4-C2.h5").exists()
    monkeypatch.undo()
    with pytest.raises(StoreError, match="does not exist"):  # a named store must exist; only operators/ is created
        GroupDownsample.from_catalog("D4-C2", store=empty)
    empty.mkdir()
    with pytest.warns(OperatorBuiltWarning, match=r"D4-C2.h5 was missing: built D4>C2 with escnn"):
        built = GroupDownsample.from_catalog("D4-C2", store=empty)
    assert (empty / "D4-C2.h5").exists() and read_operator(empty / "D4-C2.h5").attrs["subgroup"] == "C2"
    assert built.subgroup_order == 2


def test_from_catalog_without_the_build_layer_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime builds only through the hook gscli.build installs; without it, one message with the command."""
    from gscli import hooks

    monkeypatch.setattr(hooks, "_builder", None)
    (tmp_path / "s").mkdir()
    with pytest.raises(FormatError, match=r"no operator file for D4>C2 .*gscli build D4 --subgroup C2 .*import gscli.build"):
        GroupDownsample.from_catalog("D4-C2", store=tmp_path / "s")
    assert list((tmp_path / "s").iterdir()) == []


def test_runtime_never_loads_the_build_layer(store: Path) -> None:
    """Loading and applying operators imports neither gscli.build, gscli.evaluate nor the solver (docs/architecture.md)."""
    code = (
        "import sys, torch\n"
        "from gscli.nn import GroupDownsample\n"
        "from gscli.scale import resample, ScaleEqActivation\n"
        f"layer = GroupDownsample.from_file({str(path_of(store, 'D12>D6'))!r}, canonicalize=True)\n"
        "layer.upsample(layer(torch.randn(2, 48, 3, 3)))\n"
        "GroupDownsample.from_catalog('D12-D6')\n"
        "resample(torch.randn(1, 1, 9, 9), 5)\n"
        "print(sorted(m for m in sys.modules if m in ('gscli.build', 'gscli.evaluate', 'gscli.solver', 'gscli.inspect')"
        " or m.startswith('gscli.families')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_runtime_never_imports_escnn(store: Path) -> None:
    code = (
        "import sys, torch\n"
        "from gscli.nn import GroupDownsample\n"
        f"layer = GroupDownsample.from_file({str(path_of(store, 'D12>D6'))!r}, canonicalize=True)\n"
        "layer.upsample(layer(torch.randn(2, 48, 3, 3)))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'escnn'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_from_catalog_refuses_a_file_holding_another_operator(store: Path, tmp_path: Path) -> None:
    """A C8>C4 file saved under C6-C3.h5 has a valid checksum; the name asked for must still match.

    The names asked for are ones the default catalog does not ship, so the store's file is the one
    opened (a shipped name takes the shipped file: tests/test_install.py).
    """
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    shutil.copy(path_of(store, "C8>C4"), wrong / "C6-C3.h5")
    for name in ("C6-C3", "C6>C3"):
        with pytest.raises(FormatError) as info:
            GroupDownsample.from_catalog(name, store=wrong)
        assert str(info.value) == f"{wrong / 'C6-C3.h5'}: holds the C8>C4 operator, not the C6>C3 asked for"
    # the same group with another subgroup (same |G|, other |H|) is refused too, and so is the right H in the wrong G
    shutil.copy(path_of(store, "D12>C12"), wrong / "D12-D3.h5")
    with pytest.raises(FormatError, match="holds the D12>C12 operator, not the D12>D3 asked for"):
        GroupDownsample.from_catalog("D12-D3", store=wrong)
    shutil.copy(path_of(store, "D8>D1"), wrong / "D6-D1.h5")
    with pytest.raises(FormatError, match="holds the D8>D1 operator, not the D6>D1 asked for"):
        GroupDownsample.from_catalog("D6>D1", store=wrong, build=False)
    # control: the right file under its own name loads, from the store
    shutil.copy(path_of(store, "C6>C3"), wrong / "C6-C3.h5")
    layer = GroupDownsample.from_catalog("C6-C3", store=wrong)
    assert str(layer.spec) == "C6>C3" and layer.source == str(wrong / "C6-C3.h5")


def _snapshot(layer: GroupDownsample) -> dict[str, torch.Tensor]:
    """Every buffer, persistent or derived, cloned."""
    return {name: buf.clone() for name, buf in layer.named_buffers()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("canonicalize", [False, True])
def test_refused_checkpoint_leaves_the_layer_exactly_as_it_was(store: Path, canonicalize: bool) -> None:
    """A D12>D6 state_dict offered to a D12>C12 layer: refused before any buffer is touched."""
    d6_state = GroupDownsample.from_file(path_of(store, "D12>D6")).state_dict()
    layer = GroupDownsample.from_file(path_of(store, "D12>C12"), canonicalize=canonicalize)
    x = torch.randn(3, 48, 2, generator=torch.Generator().manual_seed(21), dtype=torch.float64)
    before, out = _snapshot(layer), layer(x)
    with pytest.raises(FormatError, match="checkpoint holds D12>D6 operators, but this layer applies D12>C12"):
        layer.load_state_dict(d6_state)
    # without the extra state that names the operator, the loaded nodes themselves are refused
    bare = {k: v for k, v in d6_state.items() if k != "_extra_state"}
    with pytest.raises(FormatError, match="checkpoint of D12>C12: subgroup_nodes is not a homomorphism"):
        layer.load_state_dict(bare, strict=False)
    assert _same(_snapshot(layer), before)
    after = layer(x)
    assert torch.equal(after.output if canonicalize else after, out.output if canonicalize else out)
    # what it saves now reloads into a fresh D12>C12 layer and computes the same
    saved = io.BytesIO()
    torch.save(layer.state_dict(), saved)
    saved.seek(0)
    fresh = GroupDownsample.from_file(path_of(store, "D12>C12"), canonicalize=canonicalize)
    fresh.load_state_dict(torch.load(saved, weights_only=True))
    assert _same(_snapshot(fresh), before)


def _bad_checkpoints(state: dict, n: int, m: int) -> dict[str, tuple[dict, str]]:
    nodes = state["subgroup_nodes"]
    nan_down = state["operator_down"].clone()
    nan_down[0, 1] = float("nan")
    inf_up = state["operator_up"].clone()
    inf_up[2, 0] = float("inf")
    repeated = nodes.clone()
    repeated[-1] = nodes[0]
    return {
        "NaN operator": ({"operator_down": nan_down}, "the operators hold non-finite values"),
        "inf operator": ({"operator_up": inf_up}, "the operators hold non-finite values"),
        "repeated nodes": ({"subgroup_nodes": repeated}, f"subgroup_nodes must be {m} distinct indices below {n}"),
        "all-zero nodes": ({"subgroup_nodes": torch.zeros_like(nodes)}, f"must be {m} distinct indices below {n}"),
        "node out of range": ({"subgroup_nodes": torch.where(nodes == nodes.max(), n, nodes)}, f"distinct indices below {n}"),
        "negative node": ({"subgroup_nodes": torch.where(nodes == nodes.max(), -1, nodes)}, f"distinct indices below {n}"),
        "not a subgroup": ({"subgroup_nodes": torch.arange(m)}, "is not a homomorphism"),
        "float nodes": ({"subgroup_nodes": nodes.double()}, "must hold integer indices"),
        "wrong shape": ({"operator_down": state["operator_down"][:, :-1]}, f"has shape \\({m}, {n - 1}\\), expected"),
    }


@pytest.mark.parametrize("canonicalize", [False, True])
def test_loaded_checkpoints_pass_the_constructor_checks(store: Path, canonicalize: bool) -> None:
    data = read_operator(path_of(store, "D8>D4"))
    layer = GroupDownsample.from_file(path_of(store, "D8>D4"), canonicalize=canonicalize)
    state = layer.state_dict()
    before = _snapshot(layer)
    for what, (change, message) in _bad_checkpoints(state, 16, 8).items():
        with pytest.raises(FormatError, match=message):
            layer.load_state_dict({**state, **change})
        assert _same(_snapshot(layer), before), f"{what}: a refused checkpoint changed the layer"
        # the constructor refuses the same arrays with the same words: one validation for both
        arrays = {"downsample": data["downsample"], "upsample": data["upsample"], "subgroup_nodes": data["subgroup_nodes"]}
        renamed = {"operator_down": "downsample", "operator_up": "upsample", "subgroup_nodes": "subgroup_nodes"}
        arrays.update({renamed[k]: v.numpy() for k, v in change.items()})
        with pytest.raises(FormatError, match=message):
            GroupDownsample(arrays["downsample"], arrays["upsample"], arrays["subgroup_nodes"], data["group_cayley"],
                            data["subgroup_cayley"], group="D8", subgroup="D4")
    layer.load_state_dict(state)  # control: the layer's own checkpoint loads
    assert _same(_snapshot(layer), before)


@pytest.mark.parametrize("canonicalize", [False, True])
def test_derived_tables_never_share_memory_with_buffers(store: Path, canonicalize: bool) -> None:
    layer = GroupDownsample.from_file(path_of(store, "C8>C4"), canonicalize=canonicalize)
    state = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in layer.state_dict().items()}
    x = torch.randn(2, 16, 3, generator=torch.Generator().manual_seed(22), dtype=torch.float64)
    for load in (None, {}, {"assign": True}):
        if load is not None:
            layer.load_state_dict(state, **load)
        persistent = {layer.operator_down.untyped_storage().data_ptr(), layer.operator_up.untyped_storage().data_ptr()}
        derived = {layer._down_stack.untyped_storage().data_ptr(), layer._up_stack.untyped_storage().data_ptr()}
        assert not persistent & derived, load
        if load == {"assign": True}:  # the layer owns what it loaded: the caller's tensors stay the caller's
            assert not persistent & {state[k].untyped_storage().data_ptr() for k in ("operator_down", "operator_up")}
        assert layer.operator_down.dtype == torch.float64
        out = layer(x)
        with torch.no_grad():
            layer.operator_down.mul_(0)  # editing a buffer in place does not reach the derived tables...
            layer.operator_up.mul_(0)
        again = layer(x)
        assert torch.equal(again.output if canonicalize else again, out.output if canonicalize else out)
        layer.load_state_dict(state)  # ...a load does
        assert torch.equal(layer.operator_down, state["operator_down"])


def _close_maxima(dtype: torch.dtype) -> torch.Tensor:
    """C8 fields on 64x64 positions whose pooled sums put the maximum at r^3 (coset 1), by a margin that a
    half-precision accumulator loses: in float16 both sums overflow to inf, in bfloat16 both round to 4096."""
    x = torch.zeros(1, 8, 64 * 64, dtype=torch.float64)
    if dtype == torch.float16:
        x[0, 3], x[0, 0] = 17.0, 16.5  # sums 69632 and 67584 > 65504, the largest float16
    else:
        x[0, 3], x[0, 0, :4090] = 1.0, 1.0  # sums 4100 and 4090, 4 apart; bfloat16 spaces them 16 or 32 apart
        x[0, 3, 0] = 5.0
    assert torch.equal(x.to(dtype).double(), x)  # every value is exact in the half-precision input
    return x.reshape(1, 8, 64, 64)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_canonicalization_accumulates_in_float32(store: Path, dtype: torch.dtype) -> None:
    layer = GroupDownsample.from_file(path_of(store, "C8>C4"), canonicalize=True)
    x = _close_maxima(dtype)
    pooled = x.sum(dim=(2, 3))[0]
    assert int(pooled.argmax()) == 3 and int(pooled.to(dtype).argmax()) == 0  # control: half sums lose the maximum
    assert layer(x).coset.tolist() == [1]  # float64 reference: r^3 lies in the odd coset
    out = layer(x.to(dtype))
    assert out.coset.tolist() == [1] and out.output.dtype == dtype
