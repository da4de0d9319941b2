"""A picture of a continuous-group operator (matplotlib, Agg canvas; ``gscli inspect --plot``).

One figure, four panels: (a) the bands by Casimir, each bar the band's dimension (every copy of one
irrep) with the part V keeps filled in; (b)-(d) heat maps of D (|H| x dim), U (dim x |H|) and P
(dim x dim), with the band boundaries marked on the coefficient axes.
"""

from __future__ import annotations

import json

import numpy as np

from gscli._optional import need
from gscli.fileformat import OperatorData
from gscli.specs import ContinuousOperatorSpec

__all__ = ["continuous_figure"]

_KEPT_COLOR = "#1f6fb4"
_DROPPED_COLOR = "#d9d9d9"


def _heatmap(fig, ax, matrix: np.ndarray, title: str, row_label: str, col_label: str,
             row_edges: np.ndarray | None = None, col_edges: np.ndarray | None = None) -> None:
    limit = float(np.abs(matrix).max()) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest", aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    for edge in () if row_edges is None else row_edges:
        ax.axhline(edge - 0.5, color="black", lw=0.5, alpha=0.5)
    for edge in () if col_edges is None else col_edges:
        ax.axvline(edge - 0.5, color="black", lw=0.5, alpha=0.5)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)


def continuous_figure(data: OperatorData):
    """The four-panel figure of a continuous-group file (a :class:`matplotlib.figure.Figure`, Agg canvas)."""
    need("matplotlib", "cli", "plotting (--plot)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    spec = data.spec
    assert isinstance(spec, ContinuousOperatorSpec)
    a = data.arrays
    m, dim = spec.subgroup_order, spec.group.dimension
    irreps = [json.loads(i) for i in a["bands/irrep"]]
    casimir, dims, kept = a["bands/casimir"], a["bands/dimension"], a["bands/kept"]
    edges = np.cumsum(dims)[:-1]

    fig = Figure(figsize=(15, 10), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)

    ax = axes[0, 0]
    x = np.arange(len(irreps))
    ax.bar(x, dims, color=_DROPPED_COLOR, edgecolor="#7a7a7a", label="band dimension (all copies of the irrep)")
    ax.bar(x, kept, color=_KEPT_COLOR, label=f"kept in V ({int(kept.sum())} of {dim})")
    for xi, d, k in zip(x, dims, kept):
        ax.text(xi, d, f"{int(k)}/{int(d)}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{tuple(i)}\nC={c:g}" for i, c in zip(irreps, casimir)], fontsize=7.5)
    ax.set_xlabel("irrep (escnn id) and its Casimir C, from the lowest up (the walk's order)")
    ax.set_ylabel("dimension")
    ax.set_ylim(0, float(dims.max()) * 1.15)
    ax.set_title("(a) Bands kept per Casimir", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")

    _heatmap(fig, axes[0, 1], a["downsample"], f"(b) Downsampling D = S P  ({m} x {dim})",
             f"element of {spec.subgroup} (escnn's order)", "coefficient (bands marked)", col_edges=edges)
    _heatmap(fig, axes[1, 0], a["upsample"], f"(c) Upsampling U  ({dim} x {m})",
             "coefficient (bands marked)", f"element of {spec.subgroup}", row_edges=edges)
    _heatmap(fig, axes[1, 1], a["antialias"], f"(d) Anti-aliasing projector P  ({dim} x {dim})",
             "coefficient", "coefficient", row_edges=edges, col_edges=edges)
    mode = ("no anti-aliasing needed (|H| >= dim): P = I" if data.attrs["mode"] == "no-antialias"
            else f"V keeps {m} of {dim} directions")
    fig.suptitle(f"gscli continuous operator {spec}: {spec.group.name} fields of degree <= {spec.group.L} "
                 f"(dim {dim}) sampled on {spec.subgroup} (|H| = {m}, escnn id {data.attrs['escnn_subgroup_id']}); "
                 f"{mode}", fontsize=12)
    return fig
