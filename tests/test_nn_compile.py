"""torch.compile (inductor) gives the eager layer's output, plain and canonicalized."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gscli.build import build
from gscli.nn import GroupDownsample


@pytest.fixture(scope="module")
def operator_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("D12", subgroup="D6", out=tmp_path_factory.mktemp("operators")).path


@pytest.mark.parametrize("canonicalize", [False, True])
def test_compiled_equals_eager(operator_file: Path, canonicalize: bool) -> None:
    torch._dynamo.reset()
    layer = GroupDownsample.from_file(operator_file, canonicalize=canonicalize)

    def round_trip(x: torch.Tensor):
        out = layer(x)
        return out, layer.upsample(out)

    compiled = torch.compile(round_trip, fullgraph=True)
    for shape in ((3, 48, 6, 6), (2, 48)):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        (down, up), (down_c, up_c) = round_trip(x), compiled(x)
        if canonicalize:
            assert torch.equal(down.coset, down_c.coset)
            down, down_c = down.output, down_c.output
        assert down_c.shape == down.shape and up_c.shape == up.shape
        torch.testing.assert_close(down_c, down, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(up_c, up, rtol=1e-6, atol=1e-6)
