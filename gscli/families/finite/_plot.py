"""Pictures of a finite-group operator (matplotlib, Agg canvas: no display, no pyplot state; ``gscli inspect --plot``).

One figure, six panels:

(a) spectrum: each Laplacian band (frequency = eigenvalue) with its dimension and the dimensions
    the bandlimited space V keeps;
(b) anti-aliasing response: for C_N the energy gain of P per Fourier frequency against the ideal
    low-pass filter; for other groups the gain per band (kept fraction) against the share of the
    band that plain subsampling folds into other bands;
(c) band-to-band energy transfer of plain subsampling + reconstruction (U S): off the diagonal is
    aliasing (with the operator, U D = P, the transfer is diagonal);
(d)-(f) heat maps of D (m x n), U (n x m) and P (n x n).
"""

from __future__ import annotations


import numpy as np

from gscli._optional import need
from gscli.fileformat import OperatorData
from gscli.errors import printable
from gscli.families.finite._summary import band_transfer, conditioning, fourier_response

__all__ = ["operator_figure"]

_NAME_TICKS = 24  # label heat-map axes with element names up to this many elements
_OPERATOR_COLOR = "#1f6fb4"
_PLAIN_COLOR = "#d9541e"




def _band_labels(frequencies) -> list[str]:
    """Band frequencies to two decimals; ``+ 0.0`` keeps a rounded-off zero from printing as ``-0.00``."""
    return [f"{round(float(f), 2) + 0.0:.2f}" for f in frequencies]

def _tick_step(count: int) -> int:
    return max(1, -(-count // 14))


def _literal(text: str) -> str:
    """A string from the file as literal plot text: non-printables escaped, ``$`` not read as mathtext."""
    return printable(text).replace("$", r"\$")


def _heatmap(fig, ax, matrix: np.ndarray, title: str, row_label: str, col_label: str,
             row_names: list[str], col_names: list[str]) -> None:
    limit = float(np.abs(matrix).max()) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest", aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    from matplotlib.ticker import MaxNLocator

    for names, axis in ((col_names, ax.xaxis), (row_names, ax.yaxis)):
        if len(names) <= _NAME_TICKS and max(len(s) for s in names) <= 8:
            axis.set_ticks(range(len(names)))
            axis.set_ticklabels(names, fontsize=7, rotation=90 if axis is ax.xaxis else 0)
        else:
            axis.set_major_locator(MaxNLocator(nbins=8, integer=True))


def _spectrum(ax, frequencies: np.ndarray, dims: np.ndarray, kept: np.ndarray) -> None:
    x = np.arange(len(frequencies))
    ax.bar(x, dims, color="#d0d0d0", edgecolor="#808080", label="band dimension")
    ax.bar(x, kept, color=_OPERATOR_COLOR, width=0.55, label="kept by the operator (dim of V in the band)")
    labels = _band_labels(frequencies)
    step = _tick_step(len(x))
    ax.set_xticks(x[::step])
    ax.set_xticklabels(labels[::step], rotation=60, fontsize=8)
    ax.set_xlabel("band frequency (Laplacian eigenvalue)")
    ax.set_ylabel("dimensions")
    ax.set_title("(a) Spectrum: dimensions kept per band", fontsize=11)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_ylim(0, dims.max() * 1.3 + 0.5)


def _response_cyclic(ax, data: OperatorData) -> None:
    r = fourier_response(data)
    k, gain, ideal = r["frequency"], r["gain"], r["ideal"]
    m = int(data.attrs["subgroup_order"])
    ax.axhline(1.0, color=_PLAIN_COLOR, lw=1.5, ls=":", label="plain subsampling (no filter)")
    ax.step(k, ideal, where="mid", color="black", lw=1.2, ls="--", label=f"ideal low-pass, cutoff M/2 = {m / 2:g}")
    ax.plot(k, gain, "o", color=_OPERATOR_COLOR, ms=7, label=r"operator: $\|P\,\phi_k\|^2$")
    edge = np.floor(m / 2) + 0.5  # between the last kept frequency and the first one above M/2
    ax.axvspan(edge, k.max() + 0.5, color=_PLAIN_COLOR, alpha=0.08)
    ax.axvspan(k.min() - 0.5, -edge, color=_PLAIN_COLOR, alpha=0.08, label=f"|k| > M/2: aliased by subsampling to C{m}")
    ax.set_xlim(k.min() - 0.5, k.max() + 0.5)
    ax.set_ylim(-0.05, 1.6)
    ax.set_xlabel(f"Fourier frequency k on {data.spec.group}")
    ax.set_ylabel("energy gain")
    ax.set_title("(b) Anti-aliasing response vs the ideal low-pass", fontsize=11)
    ax.legend(fontsize=7.5, loc="upper center", ncol=2)


def _response_bands(ax, frequencies: np.ndarray, kept_fraction: np.ndarray, folded_plain: np.ndarray) -> None:
    x = np.arange(len(frequencies))
    ax.bar(x - 0.2, kept_fraction, width=0.4, color=_OPERATOR_COLOR, label="operator: energy kept (gain)")
    ax.bar(x + 0.2, folded_plain, width=0.4, color=_PLAIN_COLOR, label="plain subsampling: energy folded into other bands")
    ax.axhline(1.0, color="#808080", lw=0.8, ls=":")
    labels = _band_labels(frequencies)
    step = _tick_step(len(x))
    ax.set_xticks(x[::step])
    ax.set_xticklabels(labels[::step], rotation=60, fontsize=8)
    ax.set_xlabel("band frequency (Laplacian eigenvalue)")
    ax.set_ylabel("share of the band's energy (U may amplify: > 1)")
    ax.set_title("(b) Anti-aliasing response per band", fontsize=11)
    ax.legend(fontsize=7.5, loc="upper left")
    ax.set_ylim(-0.05, max(1.3, float(folded_plain.max()) * 1.15))


def _transfer(fig, ax, transfer: np.ndarray, frequencies: np.ndarray) -> None:
    image = ax.imshow(transfer, cmap="magma_r", vmin=0, interpolation="nearest", origin="lower")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="share of the input band's energy")
    labels = _band_labels(frequencies)
    step = _tick_step(len(frequencies))
    ticks = np.arange(len(frequencies))[::step]
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[i] for i in ticks], rotation=60, fontsize=8)
    ax.set_yticks(ticks)
    ax.set_yticklabels([labels[i] for i in ticks], fontsize=8)
    ax.set_xlabel("input band (frequency)")
    ax.set_ylabel("band of the reconstruction U S f")
    if len(frequencies) <= 12:
        for (i, j), value in np.ndenumerate(transfer):
            if value >= 0.005:
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value > 0.6 * transfer.max() else "black")
    ax.set_title("(c) Plain subsampling + U: off-diagonal = aliasing\n(with the operator, U D = P: diagonal only)", fontsize=11)


def operator_figure(data: OperatorData):
    """The six-panel figure of an operator (a :class:`matplotlib.figure.Figure`, Agg canvas)."""
    need("matplotlib", "cli", "plotting (--plot)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    a, attrs = data.arrays, data.attrs
    n, m = int(attrs["group_order"]), int(attrs["subgroup_order"])
    names = [_literal(s) for s in a["group_element_names"]]
    nodes = np.asarray(a["subgroup_nodes"], dtype=np.int64)
    h_names = [names[g] for g in nodes]
    transfer = band_transfer(data)
    frequencies = transfer["frequencies"]
    dims = transfer["dimensions"].astype(np.float64)
    kept_fraction = np.clip(np.diag(transfer["operator"]), 0.0, None)
    folded_plain = transfer["plain"].sum(axis=0) - np.diag(transfer["plain"])
    cond = conditioning(a["upsample"], a["basis"], nodes)

    fig = Figure(figsize=(16, 9.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    _spectrum(axes[0, 0], frequencies, dims, kept_fraction * dims)
    if str(data.spec.group).startswith("C"):
        _response_cyclic(axes[0, 1], data)
    else:
        _response_bands(axes[0, 1], frequencies, kept_fraction, folded_plain)
    _transfer(fig, axes[0, 2], transfer["plain"], frequencies)
    order = "element of G (escnn order)"
    _heatmap(fig, axes[1, 0], np.asarray(a["downsample"]), "(d) Downsampling D = S P  (m x n)",
             "element of H", order, h_names, names)
    _heatmap(fig, axes[1, 1], np.asarray(a["upsample"]), "(e) Reconstruction U  (n x m)",
             order, "element of H", names, h_names)
    _heatmap(fig, axes[1, 2], np.asarray(a["antialias"]), "(f) Anti-aliasing projector P  (n x n)",
             order, order, names, names)
    fig.suptitle(
        f"gscli operator {data.spec}: {data.spec.group} (|G| = {n}) downsampled to {data.spec.subgroup} (|H| = {m}), "
        f"rate {attrs['rate']}   |   " + r"$\|U\|_2$" + f" = {cond['upsample_norm']:.3g},  "
        + r"$\sigma_{\min}(S|_V)$" + f" = {cond['sampling_sigma_min']:.3g},  "
        + r"$\mathrm{tr}(PL)$" + f" = {float(attrs.get('aliasing_cost', np.nan)):.4g}",
        fontsize=13,
    )
    return fig
