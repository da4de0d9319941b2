"""gscli against the Group_Sampling research code, side by side, on the same inputs in one run.

Both layers are constructed with the same research-code keywords (gscli through
:mod:`gscli.compat`), anti-aliasing on with the research README's settings
(``iterations=100, smoothness_loss_weight=0.1``), and measured on the same float32 inputs with one
thread:

* ``construct`` -- constructing the layer a second time in this process (escnn's caches warm; gscli
  reads its operator file, the research code re-runs its optimiser);
* ``forward`` -- median time of ``layer(x)`` on a feature map ``(batch, C*|G|, *spatial)``;
* ``equivariance`` -- max over h in H of ||f(h.x) - h.f(x)|| / ||f(x)|| for the real forward on that
  feature map (h acts on the group axis; both layers act pointwise in space);
* ``reconstruction`` -- ||U D y - y|| / ||y|| for y = U D x, a signal the layer itself returns
  (0 whenever U D is a projector, i.e. whenever bandlimited signals are reconstructed exactly);
* ``identity`` -- ||f(x) - x|| / ||x|| of the same request at subsampling_factor 1;
* ``state`` -- bytes of the layer's ``state_dict`` tensors.

Element orders are matched explicitly. Output channel i of each layer is the sample at one element
of G: ``subgroup_nodes[i]`` for gscli, ``graphs.subgroup_graph.nodes[i]`` for the research code
(both index G in escnn's element order). h in H acts on a function y on H by
``(h.y)[j] = y[i]`` where ``nodes[j] = h nodes[i]`` in G's Cayley table, so neither library's
numbering of H is assumed. The libraries sample different copies of H for D12 -> D6 and order
O -> C4 differently; the script prints both node lists and each copy's aliasing cost tr(P L).

With ``--model`` it compares whole models instead: ``gscli.compat.get_model`` against the research
code's ``get_model`` with the research README's keywords (3 input channels, fields 32/64/128, 7x7
kernels, D12 -> D6 and stride 2 in the first stage), forward of a batch ``(2, 3, 33, 33)`` without
gradients, one thread, in train mode (escnn re-expands every filter on every forward) and in eval
mode (filters cached), interleaved. The research ``get_model`` defaults to ``layer_kwargs =
{"dilation": 2}`` with padding ``(kernel - 1) // 2``: its maps shrink (33 -> 27, 14 -> 8, 8 -> 2) and
its filters have another basis, so it is a different model from gscli's (undilated, maps kept at
33, 17, 17). The script measures both the research default and the research model with
``layer_kwargs={}``, the same configuration as gscli's (equal parameter counts, printed).

Usage::

    python benchmarks/vs_reference.py --reference ~/src/Group_Sampling     # a checkout of the research code
    python benchmarks/vs_reference.py --reference DIR --json --repeat 20
    python benchmarks/vs_reference.py --reference DIR --model --repeat 5

Without ``--reference`` (or when DIR cannot be imported, e.g. without ``einops``) the script says
why and exits 0. Nothing of the research code is copied: it is imported from DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

README_AA = {"iterations": 100, "smoothness_loss_weight": 0.1}

# name -> research-code keywords, feature-map shape (batch, fields, *spatial)
CASES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "C8>C4": (dict(group_type="cycle", order=8, sub_group_type="cycle", subsampling_factor=2), (8, 10, 32, 32)),
    "D12>D6": (dict(group_type="dihedral", order=12, sub_group_type="dihedral", subsampling_factor=2), (8, 10, 32, 32)),
    "D12>C12": (dict(group_type="dihedral", order=12, sub_group_type="cycle", subsampling_factor=2), (8, 10, 32, 32)),
    "O>C4": (dict(group_type="octahedral", sub_group_type="cycle", subsampling_factor=6), (2, 4, 8, 8, 8)),
    "Oh>O": (dict(group_type="full_octahedral", sub_group_type="octahedral", subsampling_factor=2), (2, 4, 8, 8, 8)),
}


@dataclass
class Side:
    construct_s: float
    forward_ms: float
    equivariance: float
    reconstruction: float
    identity: float | None
    state_bytes: int
    nodes: list[int]
    cost: float


@contextlib.contextmanager
def quiet():
    """The research code prints while it constructs; keep stdout for the report."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def import_reference(directory: str | None) -> tuple[Any, str]:
    if directory is None:
        return None, "no --reference DIR given (a checkout of the Group_Sampling research code)"
    path = Path(directory).expanduser()
    if not (path / "gsampling" / "layers" / "downsampling.py").is_file():
        return None, f"{path} is not a checkout of the research code (no gsampling/layers/downsampling.py)"
    sys.path.insert(0, str(path))
    try:
        with quiet():
            from gsampling.layers.downsampling import SubgroupDownsample
    except Exception as exc:  # noqa: BLE001 - any import failure means: skip, and say why
        return None, f"the research code at {path} cannot be imported: {type(exc).__name__}: {exc}"
    return SubgroupDownsample, ""


def action(cayley: np.ndarray, nodes: list[int], h: int) -> torch.Tensor:
    """Index map of h acting on functions on H, via G's table: (h.y)[j] = y[i] with nodes[j] = h nodes[i]."""
    position = {g: j for j, g in enumerate(nodes)}
    perm = torch.empty(len(nodes), dtype=torch.int64)
    for i, g in enumerate(nodes):
        perm[position[int(cayley[h, g])]] = i
    return perm


def act(x: torch.Tensor, perm: torch.Tensor, order: int) -> torch.Tensor:
    shape = x.shape
    fibers = x.reshape(shape[0], -1, order, *shape[2:])
    return fibers[:, :, perm].reshape(shape)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).double().norm() / b.double().norm().clamp_min(1e-300))


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(make, keywords: dict[str, Any], warm: dict[str, Any], nodes_of, x: torch.Tensor, cayley: np.ndarray,
            lap: np.ndarray, repeat: int) -> Side:
    n = cayley.shape[0]
    with quiet():
        make(**warm)  # first construction: builds gscli's operator file / loads escnn's groups
        start = time.perf_counter()
        layer = make(**keywords)
        construct = time.perf_counter() - start
    nodes = [int(i) for i in nodes_of(layer)]
    with torch.no_grad(), quiet():
        y = layer(x)[0]
        forward = timed(lambda: layer(x), repeat)
        equivariance = 0.0
        for h in nodes:
            perm_g = action(cayley, list(range(n)), h)
            perm_h = action(cayley, nodes, h)
            equivariance = max(equivariance, rel(layer(act(x, perm_g, n))[0], act(y, perm_h, len(nodes))))
        once = layer.upsample(y)
        reconstruction = rel(layer.upsample(layer(once)[0]), once)
        try:
            same = make(**{**keywords, "subsampling_factor": 1, "sub_group_type": keywords["group_type"]})
            identity = rel(same(x)[0], x)
        except Exception:  # noqa: BLE001 - a library that cannot build the rate-1 layer reports None
            identity = None
    state = sum(t.numel() * t.element_size() for t in layer.state_dict().values() if isinstance(t, torch.Tensor))
    cost = copy_cost(nodes, lap, cayley)
    return Side(construct, forward * 1e3, equivariance, reconstruction, identity, state, nodes, cost)


def copy_cost(nodes: list[int], lap: np.ndarray, cayley: np.ndarray) -> float:
    """tr(P L) of gscli's exact operator for the subgroup {nodes} (any copy), under escnn's Cayley graph."""
    from gscli.groups import FiniteGroup
    from gscli.solver import solve

    n = cayley.shape[0]
    group = FiniteGroup("G", cayley, int(np.nonzero(np.all(cayley == np.arange(n), axis=1))[0][0]), (), ("",) * n)
    # solve() needs only the bands; pass those of L directly
    from gscli.solver import spectral_bands

    return solve(group, np.asarray(sorted(nodes)), bands=spectral_bands(lap)).cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", metavar="DIR", help="a checkout of the Group_Sampling research code")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--store", help="gscli operator store (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--model", action="store_true", help="compare whole models (get_model), not layers")
    args = parser.parse_args()
    reference, why = import_reference(args.reference)
    if reference is None:
        print(f"skipped: {why}")
        return 0
    if args.model:
        return compare_models(args.store, args.repeat, args.json)
    torch.set_num_threads(1)
    from gscli import _escnn
    from gscli.compat import SubgroupDownsample, operator_for
    from gscli.solver import laplacian

    store = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="gscli-vs-reference-"))
    results = {}
    for name in args.cases:
        keywords, shape = CASES[name]
        spec = operator_for(**keywords).operator
        G = _escnn.load_group(spec.group)
        lap = laplacian(G)
        batch, fields, *spatial = shape
        x = torch.randn(batch, fields * G.order, *spatial, generator=torch.Generator().manual_seed(0))
        common = dict(keywords, num_features=fields, dtype=torch.float32, apply_antialiasing=True,
                      anti_aliasing_kwargs=README_AA)
        ours = measure(lambda **k: SubgroupDownsample(**k, store=store), common, common,
                       lambda layer: layer.layer.subgroup_nodes.tolist(), x, G.cayley, lap, args.repeat)
        # the research code's warm-up skips its optimiser (it only loads escnn's groups): that costs minutes for O_h
        theirs = measure(reference, common, dict(common, apply_antialiasing=False),
                         lambda layer: layer.graphs.subgroup_graph.nodes, x, G.cayley, lap, args.repeat)
        if not args.json:
            if not results:
                print("one thread, float32, same inputs; anti-aliasing with the research README's settings")
                print(HEAD)
            print_case(name, ours, theirs)
        results[name] = {"gscli": asdict(ours), "reference": asdict(theirs), "input": list(x.shape),
                         "construct_ratio": theirs.construct_s / ours.construct_s,
                         "forward_ratio": theirs.forward_ms / ours.forward_ms,
                         "state_ratio": theirs.state_bytes / ours.state_bytes}
    if args.json:
        print(json.dumps({"threads": 1, "dtype": "float32", "readme_anti_aliasing": README_AA, "cases": results},
                         indent=2))
    return 0


#: The research README's ``get_model`` call (its STL-10 example).
README_MODEL = dict(input_channel=3, num_channels=[32, 64, 128], num_layers=3,
                    dwn_group_types=[["dihedral", "dihedral"]] * 3, subsampling_factors=[2, 1, 1],
                    spatial_subsampling_factors=[2, 1, 1], num_classes=10,
                    antialiasing_kwargs={"iterations": 100, "smoothness_loss_weight": 0.5})


def compare_models(store: str | None, repeat: int, as_json: bool) -> int:
    """Forward times of gscli.compat.get_model and the research get_model, side by side (see the docstring)."""
    torch.set_num_threads(1)
    from gscli.compat import get_model

    with quiet():
        from models.model_handler import get_model as reference_get_model

        folder = Path(store) if store else Path(tempfile.mkdtemp(prefix="gscli-vs-reference-"))
        models = {"gscli": get_model(**README_MODEL, store=folder),
                  "reference, same configuration (layer_kwargs={})": reference_get_model(**README_MODEL, layer_kwargs={}),
                  "reference, its default (dilation 2)": reference_get_model(**README_MODEL)}
    x = torch.randn(2, 3, 33, 33, generator=torch.Generator().manual_seed(0))
    times: dict[tuple[str, str], list[float]] = {}
    with torch.no_grad(), quiet():
        for _ in range(repeat + 1):  # the first round warms up and is dropped
            for mode in ("train", "eval"):
                for name, model in models.items():
                    model.train(mode == "train")
                    start = time.perf_counter()
                    model(x)
                    times.setdefault((name, mode), []).append(time.perf_counter() - start)
    rows = {name: {"parameters": sum(p.numel() for p in model.parameters()),
                   **{f"forward_{mode}_ms": statistics.median(times[name, mode][1:]) * 1e3 for mode in ("train", "eval")}}
            for name, model in models.items()}
    ours = rows["gscli"]
    for row in rows.values():
        for mode in ("train", "eval"):
            row[f"gscli_over_this_{mode}"] = ours[f"forward_{mode}_ms"] / row[f"forward_{mode}_ms"]
    if as_json:
        print(json.dumps({"threads": 1, "input": list(x.shape), "repeat": repeat, "models": rows}, indent=2))
        return 0
    print(f"get_model with the research README's keywords, input {tuple(x.shape)}, one thread, no gradients, "
          f"median of {repeat}, interleaved")
    print(f"  {'model':<50}{'params':>9}{'train ms':>10}{'eval ms':>9}{'gscli/this train':>18}{'eval':>7}")
    for name, row in rows.items():
        print(f"  {name:<50}{row['parameters']:>9}{row['forward_train_ms']:>10.0f}{row['forward_eval_ms']:>9.0f}"
              f"{row['gscli_over_this_train']:>18.2f}{row['gscli_over_this_eval']:>7.2f}")
    return 0


HEAD = (f"{'case':8} {'library':9} {'construct':>10} {'forward':>9} {'equivariance':>12} {'reconstruct':>11} "
        f"{'identity@1':>10} {'state':>9} {'tr(PL)':>7}  H in G (escnn indices, in the layer's order)")


def print_case(name: str, ours: Side, theirs: Side) -> None:
    for lib, s in (("gscli", ours), ("reference", theirs)):
        ident = "n/a" if s.identity is None else f"{s.identity:.1e}"
        print(f"{name:8} {lib:9} {s.construct_s * 1e3:8.1f}ms {s.forward_ms:7.2f}ms {s.equivariance:12.1e} "
              f"{s.reconstruction:11.1e} {ident:>10} {s.state_bytes:9d} {s.cost:7.3f}  {s.nodes}")
    construct, forward = theirs.construct_s / ours.construct_s, theirs.forward_ms / ours.forward_ms
    print(f"{'':8} {'ratio':9} {construct:9.0f}x {forward:8.1f}x "
          f"{'':12} {'':11} {'':10} {theirs.state_bytes / ours.state_bytes:8.0f}x   (reference / gscli)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
