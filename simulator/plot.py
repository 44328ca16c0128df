"""Figures and tables from run folders: accuracy curves, a heatmap, a table.

Runs that differ only by their seed form one group; curves show the group's
mean accuracy with its min-max band over seeds. Uses matplotlib's
object-oriented API (no pyplot), so no global backend state is touched.
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from experiments.tools import UserException
from simulator.config import Config
from simulator.store import CONFIG, EVALS, SUMMARY, RunFolder, csv_bytes, atomic_write, read_csv

TABLE_COLUMNS = ("aggregator", "attack", "f", "heterogeneity", "variant", "seeds", "final_accuracy_mean",
                 "final_accuracy_std", "best_accuracy_mean")
# Identity fields that already name a group's panel or row (the rest of the identity tells variants apart).
_LABELLED = {"aggregator", "attack", "nb_decl_byz", "nb_real_byz", "seed"}


@dataclass
class Group:
    """Runs with the same configuration except the seed."""

    aggregator: str
    attack: str
    f: int
    heterogeneity: str
    steps: list[int]
    accuracies: np.ndarray  # [seeds, evaluations]
    best: list[float]
    config: dict
    variant: str = ""  # the other fields in which this group differs from the rest, e.g. "lr=0.05"

    @property
    def label(self) -> str:
        return f"{self.aggregator} [{self.variant}]" if self.variant else self.aggregator


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Every finished run folder at or below `paths`."""
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise UserException(f"No such folder: {str(path)!r}.")
        found += sorted(p.parent for p in path.rglob(SUMMARY))
    if not found:
        raise UserException(f"No finished run (a folder with {SUMMARY}) under {', '.join(map(str, paths))}.")
    return found


def load_groups(folders: Sequence[Path]) -> list[Group]:
    """Group runs by configuration minus the seed."""
    buckets: dict[str, list[tuple[dict, list[dict], dict]]] = defaultdict(list)
    for folder in folders:
        store = RunFolder(folder)
        config = Config.from_dict(store.read_json(CONFIG)).identity()
        key = json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True)
        buckets[key].append((config, read_csv(store.file(EVALS)), store.read_json(SUMMARY)))
    groups = []
    for runs in buckets.values():
        config = runs[0][0]
        length = min(len(evals) for _, evals, _ in runs)
        groups.append(Group(
            aggregator=config["aggregator"], attack=config["attack"], f=config["nb_real_byz"],
            heterogeneity=config["heterogeneity"],
            steps=[row["step"] for row in runs[0][1][:length]],
            accuracies=np.array([[row["accuracy"] for row in evals[:length]] for _, evals, _ in runs]),
            best=[summary["best_accuracy"] for _, _, summary in runs], config=config,
        ))
    fields = set().union(*(g.config for g in groups)) - _LABELLED
    varying = sorted(k for k in fields if len({repr(g.config.get(k)) for g in groups}) > 1)
    for g in groups:
        g.variant = ", ".join(f"{k}={g.config.get(k)}" for k in varying)
    return sorted(groups, key=lambda g: (g.attack, g.f, g.aggregator, g.variant))


def plot_curves(groups: Sequence[Group], path: Path) -> None:
    """One panel per (attack, f): accuracy vs step, one line per aggregator."""
    panels = sorted({(g.attack, g.f) for g in groups})
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (attack, f) in zip(axes, panels):
        for g in (g for g in groups if (g.attack, g.f) == (attack, f)):
            mean = g.accuracies.mean(axis=0)
            line, = ax.plot(g.steps, mean, label=g.label)
            if len(g.accuracies) > 1:
                ax.fill_between(g.steps, g.accuracies.min(axis=0), g.accuracies.max(axis=0), alpha=0.2, color=line.get_color())
        ax.set_title(f"attack: {attack}, f = {f}")
        ax.set_xlabel("step")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    _save_figure(fig, path)


def plot_heatmap(groups: Sequence[Group], path: Path) -> None:
    """Final accuracy (mean over seeds) per aggregator and variant (rows) x attack and f (columns)."""
    rows = sorted({g.label for g in groups})
    cols = sorted({(g.attack, g.f) for g in groups})
    grid = np.full((len(rows), len(cols)), np.nan)
    for g in groups:
        grid[rows.index(g.label), cols.index((g.attack, g.f))] = g.accuracies[:, -1].mean()
    fig = Figure(figsize=(1.3 * len(cols) + 2.5, 0.5 * len(rows) + 1.8), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), [f"{a}\nf={f}" for a, f in cols], fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, label="final test accuracy")
    _save_figure(fig, path)


def table(groups: Sequence[Group]) -> list[dict]:
    """One row per group: final accuracy mean/std over seeds and best accuracy."""
    rows = []
    for g in groups:
        finals = g.accuracies[:, -1].tolist()
        rows.append({
            "aggregator": g.aggregator, "attack": g.attack, "f": g.f, "heterogeneity": g.heterogeneity,
            "variant": g.variant,
            "seeds": len(finals), "final_accuracy_mean": round(statistics.fmean(finals), 4),
            "final_accuracy_std": round(statistics.pstdev(finals), 4), "best_accuracy_mean": round(statistics.fmean(g.best), 4),
        })
    return rows


def _save_figure(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def report(paths: Sequence[str | Path], output: str | Path) -> list[Path]:
    """Write accuracy.png, heatmap.png and table.csv for the runs under `paths`."""
    groups = load_groups(find_runs(paths))
    out = Path(output)
    written = [out / "accuracy.png", out / "heatmap.png", out / "table.csv"]
    plot_curves(groups, written[0])
    plot_heatmap(groups, written[1])
    atomic_write(written[2], csv_bytes(TABLE_COLUMNS, table(groups)))
    return written
