"""Drawing: heatmaps and curves as matplotlib `Figure`s, built from plain arrays.

Object-oriented matplotlib only (no pyplot): every function returns a new
`Figure` and touches no global state, so a caller can inspect it (panels,
titles, lines) or save it. Saving is `save_figure`: PNG (a 256-colour palette
image) and PDF, each written atomically through `experiments.atomic.atomic_write`.
"""
from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from experiments.atomic import atomic_write
from simulator.report.stats import mean_ci

__all__ = ["Line", "curves", "heatmap", "save_figure"]

FORMATS = ("png", "pdf")


@dataclass(frozen=True)
class Line:
    """One curve of a panel: [seeds, points] values at ``steps``, drawn as their mean over seeds."""

    label: str
    steps: np.ndarray
    values: np.ndarray


def _wrap(title: str, inches: float) -> str:
    """Wrap each line of ``title`` to the width of a figure ``inches`` wide (9-point text)."""
    width = max(30, int(inches * 12))
    return "\n".join(part for line in title.split("\n") for part in textwrap.wrap(line, width, break_on_hyphens=False))


def heatmap(values: np.ndarray, rows: Sequence[str], columns: Sequence[str], *, title: str, xlabel: str,
            label: str, notes: np.ndarray | None = None) -> Figure:
    """Rows x columns of accuracies on a fixed [0, 1] colour scale, each cell annotated with its value.

    ``notes`` (optional, same shape) adds a second line to a cell, e.g. the attack behind a worst case.
    """
    width = max(6.0, 1.2 * len(columns) + 3.0)
    fig = Figure(figsize=(width, 0.45 * len(rows) + 2.2), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["viridis"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(values), vmin=0, vmax=1, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, fontsize=8, rotation=30 if len(columns) > 4 else 0, ha="right"
                  if len(columns) > 4 else "center")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("aggregator")
    for (i, j), value in np.ndenumerate(values):
        if np.isnan(value):
            continue
        note = f"\n{notes[i, j]}" if notes is not None and isinstance(notes[i, j], str) and notes[i, j] else ""
        ax.text(j, i, f"{value:.2f}{note}", ha="center", va="center", fontsize=7,
                color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, label=label)
    fig.suptitle(_wrap(title, width), fontsize=9)  # over the whole figure: long row labels narrow the axes
    return fig


def _draw(ax, line: Line, colour: tuple, band: bool) -> None:
    """The mean over seeds of the finite values, with the 95% interval band when asked and defined."""
    finite = np.isfinite(line.values)
    counts = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, line.values, 0.0).sum(axis=0) / counts
    ax.plot(line.steps, mean, color=colour, label=line.label, linewidth=1.3)
    if band and len(line.values) > 1 and finite.all():
        centre, half = mean_ci(line.values, axis=0)
        ax.fill_between(line.steps, np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1),
                        color=colour, alpha=0.2, linewidth=0)


def curves(panels: Mapping[str, Sequence[Line]], *, title: str, ylabel: str, band: bool = True,
           log: bool = False, xlabel: str = "step", order: Sequence[str] = ()) -> Figure:
    """One panel per key of ``panels`` (shared axes), one line per `Line`, one legend for the figure.

    With ``band`` the y axis is accuracy, fixed to [0, 1], and each line carries the 95% confidence
    band over seeds, clipped to [0, 1]; with ``log`` the y axis is logarithmic (non-positive values are not
    drawn). The legend and the colours follow ``order`` (labels not in it after, by name).
    """
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    rank = {label: i for i, label in enumerate(order)}
    labels = sorted({line.label for lines in panels.values() for line in lines},
                    key=lambda label: (rank.get(label, len(rank)), label))
    # The legend sits at the top right, beside the title (8-point labels, about 0.07 inch a character, plus
    # the line sample): the panels get 4 inches each and the title at least 4 inches beside the legend.
    legend = 0.07 * max(map(len, labels), default=0) + 0.8
    width = max(4.0 * cols + 1.8, legend + 4.0)
    fig = Figure(figsize=(width, 3.0 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    palette = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    colours = {name: palette(i % palette.N) for i, name in enumerate(labels)}
    for ax, (name, lines) in zip(axes, panels.items()):
        for line in lines:
            _draw(ax, line, colours[line.label], band)
        ax.set_title(f"attack: {name}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-cols:]:
        ax.set_xlabel(xlabel)
    for ax in axes[::cols]:
        ax.set_ylabel(ylabel)
    if not log:
        axes[0].set_ylim(0, 1)
    elif any((line.values[np.isfinite(line.values)] > 0).any() for lines in panels.values() for line in lines):
        axes[0].set_yscale("log")
    handles = {h.get_label(): h for ax in axes for h in ax.get_lines()}
    fig.legend([handles[k] for k in labels], labels, loc="outside right upper", fontsize=8)
    fig.suptitle(_wrap(title, width - legend), fontsize=9, x=0.01, ha="left")
    return fig


def save_figure(fig: Figure, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.pdf`` (or ``formats``), each through `atomic_write`."""
    written = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=120)
        if fmt == "png":  # a 256-colour palette image: indistinguishable here, a third of the size (studies keep many)
            image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
            buffer = io.BytesIO()
            image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, format="png", optimize=True)
        atomic_write(path, buffer.getvalue())
        written.append(path)
    return written