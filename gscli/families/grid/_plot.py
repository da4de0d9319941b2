"""Pictures of a grid operator (matplotlib, Agg canvas; the library behind ``gscli inspect --plot`` on grid files).

One figure, six panels, for one axis N → M (the first; the title names the others):

(a) frequency response: the energy gain ||P φ_k||² of the projector P = U·D for every frequency k
    of Z_N, against the ideal low-pass (1 for |k| <= h) and gscli's group operator C_N → C_M (which
    keeps the cosine at M/2: gain 1/2 at k = ±M/2 for even M);
(b) aliasing of plain subsampling (input ⌊iN/M⌋ for output i): where each input frequency lands
    on Z_M, energy gain × N/M — everything above the band folds onto a kept frequency;
(c) the same for the operator D: the band goes straight through, nothing else arrives;
(d)-(f) heat maps of D (M x N), U (N x M) and U·D (N x N).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from matplotlib.ticker import MultipleLocator

from gscli.fileformat import OperatorData
from gscli.scale._resample import band_limit
from gscli.specs import GridOperatorSpec

__all__ = ["grid_figure", "frequency_response", "transfer"]

_OPERATOR_COLOR = "#1f6fb4"
_PLAIN_COLOR = "#d9541e"


def _modes(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Signed frequencies -⌊size/2⌋ .. and the unit Fourier modes as columns (size, size)."""
    k = np.arange(-(size // 2), size - size // 2)
    x = np.arange(size)
    return k, np.exp(2j * np.pi * np.outer(x, k) / size) / np.sqrt(size)


def frequency_response(projector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(k, gain)``: the energy gain ||P φ_k||² of an (N, N) projector for each signed frequency k of Z_N."""
    k, modes = _modes(projector.shape[0])
    return k, np.sum(np.abs(np.asarray(projector, dtype=np.float64) @ modes) ** 2, axis=0)


def transfer(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(k_out, k_in, T)``: T[k', k] = |<φ'_{k'}, A φ_k>|² · N/M for an (M, N) matrix A (1 = passed unchanged)."""
    m, n = matrix.shape
    k_in, modes_in = _modes(n)
    k_out, modes_out = _modes(m)
    t = np.abs(modes_out.conj().T @ np.asarray(matrix, dtype=np.float64) @ modes_in) ** 2 * (n / m)
    return k_out, k_in, t


def _plain(n: int, m: int) -> np.ndarray:
    s = np.zeros((m, n))
    s[np.arange(m), (np.arange(m) * n) // m] = 1.0
    return s


def _heatmap(fig, ax, matrix: np.ndarray, title: str, row_label: str, col_label: str) -> None:
    limit = float(np.abs(matrix).max()) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest", aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    _integer_ticks(ax)


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))


def _transfer_panel(fig, ax, matrix: np.ndarray, title: str, h: int) -> None:
    k_out, k_in, t = transfer(matrix)
    image = ax.imshow(t, cmap="magma_r", vmin=0, vmax=max(1.0, float(t.max())), interpolation="nearest", aspect="auto",
                      origin="lower", extent=(k_in[0] - 0.5, k_in[-1] + 0.5, k_out[0] - 0.5, k_out[-1] + 0.5))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="energy gain x N/M")
    for edge in (-h - 0.5, h + 0.5):
        ax.axvline(edge, color=_OPERATOR_COLOR, lw=0.8, ls="--")
    _integer_ticks(ax)
    ax.set_xlabel("input frequency k on Z_N")
    ax.set_ylabel("output frequency on Z_M")
    ax.set_title(title, fontsize=11)


def grid_figure(data: OperatorData):
    """The six-panel figure of a grid-operator file (a :class:`matplotlib.figure.Figure`, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    spec = data.spec
    assert isinstance(spec, GridOperatorSpec)
    (n, m), others = spec.axes[0], spec.axes[1:]
    a = data.arrays
    d = np.asarray(a["axis0/downsample"], dtype=np.float64)
    u = np.asarray(a["axis0/upsample"], dtype=np.float64)
    p = np.asarray(a["axis0/projector"], dtype=np.float64)
    h = band_limit(m)

    fig = Figure(figsize=(16, 9.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)

    ax = axes[0, 0]
    k, gain = frequency_response(u @ d)
    ideal = (np.abs(k) <= h).astype(np.float64)
    ax.axhline(1.0, color=_PLAIN_COLOR, lw=1.5, ls=":", label="plain subsampling (no filter)")
    if n % m == 0 and m % 2 == 0:  # C_M is a subgroup of C_N: show where the group operator differs
        group = np.where(np.abs(k) < m / 2, 1.0, 0.0)
        group[np.abs(k) == m // 2] = 0.5 if m < n else 1.0
        ax.step(k, group, where="mid", color="#7a7a7a", lw=1.0, ls="-.",
                label=f"group operator C{n} -> C{m}: keeps the cosine at M/2")
    ax.step(k, ideal, where="mid", color="black", lw=1.2, ls="--", label=f"ideal odd band |k| <= {h}")
    ax.plot(k, gain, "o", color=_OPERATOR_COLOR, ms=max(2.0, 7.0 - n / 40), label=r"operator: $\|U D\,\phi_k\|^2$")
    ax.axvspan(h + 0.5, k.max() + 0.5, color=_PLAIN_COLOR, alpha=0.08)
    ax.axvspan(k.min() - 0.5, -h - 0.5, color=_PLAIN_COLOR, alpha=0.08, label="dropped: aliased by plain subsampling")
    ax.set_xlim(k.min() - 0.5, k.max() + 0.5)
    ax.set_ylim(-0.05, 1.75)
    _integer_ticks(ax)
    ax.yaxis.set_major_locator(MultipleLocator(0.25))
    ax.set_xlabel(f"frequency k on Z_{n}")
    ax.set_ylabel("energy gain")
    ax.set_title("(a) Frequency response vs the ideal low-pass", fontsize=11)
    ax.legend(fontsize=7.5, loc="upper center", ncol=1, framealpha=0.9)

    _transfer_panel(fig, axes[0, 1], _plain(n, m), "(b) Plain subsampling: frequencies above the band\nfold onto kept ones (aliasing)", h)
    _transfer_panel(fig, axes[0, 2], d, "(c) The operator D: the band passes, nothing folds", h)
    _heatmap(fig, axes[1, 0], d, f"(d) Downscaling D  ({m} x {n})", f"sample on Z_{m}", f"sample on Z_{n}")
    _heatmap(fig, axes[1, 1], u, f"(e) Upscaling U = (N/M) D^T  ({n} x {m})", f"sample on Z_{n}", f"sample on Z_{m}")
    _heatmap(fig, axes[1, 2], p, f"(f) Projector U D onto the band  ({n} x {n})", f"sample on Z_{n}", f"sample on Z_{n}")
    rest = ""
    if others:
        rest = "; other axes " + ", ".join(f"{a_} -> {b_}" for a_, b_ in others) + " (plots: axis 0)"
    fig.suptitle(
        f"gscli grid operator {spec}: axis 0, Z_{n} -> Z_{m} (ratio {Fraction(n, m)}), "
        f"kept |k| <= {h} ({2 * h + 1} frequencies{', Nyquist bin dropped' if m % 2 == 0 else ''}){rest}",
        fontsize=13,
    )
    return fig
