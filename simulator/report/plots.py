"""Which figures a report holds, built from a design and its numbers.

- ``heatmap-attacks``: per setting, aggregator x attack, the chosen metric;
- ``heatmap-f``: when the number of attackers varies, per remaining setting,
  aggregator x f, each cell the worst case over attacks at that f;
- ``heatmap-heterogeneity``: the same over the data split, when it varies;
- ``curves``: per setting, test accuracy vs step (vs round, for federated
  runs), one panel per attack, one line per aggregator (mean over seeds, 95%
  confidence band);
- ``diagnostics`` (optional): per setting, the distance of the aggregate from
  the honest mean relative to the honest mean's norm, per step, log scale.

Each `Plot` carries its file stem (no suffix), a caption and the `Figure`.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from simulator.core.identity import FEDERATED_FIELDS
from simulator.report.figures import Line, curves, heatmap
from simulator.report.grids import F_FIELDS, Grid, attack_grids, axis_grids
from simulator.report.load import Design, Setting
from simulator.report.naming import describe, f_label, fixed_title, slugs
from simulator.report.stats import Summary, WorstCase

__all__ = ["METRIC_LABELS", "Plot", "plots"]

METRIC_LABELS = {"final": "final test accuracy", "best": "best test accuracy",
                 "last5": "test accuracy, mean of the last 5 evaluations"}


@dataclass(frozen=True)
class Plot:
    """A figure to save as ``<stem>.png`` and ``<stem>.pdf``, with the caption report.md shows."""

    stem: str
    caption: str
    figure: Figure


def _grid_plots(kind: str, grids: Sequence[Grid], design: Design, *, xlabel: str, what: str,
                caption: str) -> Iterator[Plot]:
    for grid, slug in zip(grids, slugs([g.setting for g in grids])):
        title = f"{what}\n{fixed_title(design.fixed, grid.setting)}"
        figure = heatmap(grid.values, grid.rows, grid.columns, title=title, xlabel=xlabel, label="test accuracy",
                         notes=grid.attacks)
        yield Plot(f"heatmap-{kind}{slug}", f"{caption} ({describe(grid.setting)})", figure)


def heatmaps(design: Design, summaries: Sequence[Summary], cases: Sequence[WorstCase],
             metric: str) -> Iterator[Plot]:
    """Aggregator x attack per setting; aggregator x f and x heterogeneity when those vary."""
    label = METRIC_LABELS[metric]
    worst = f"Worst case over attacks of the {label}"
    yield from _grid_plots("attacks", attack_grids(summaries, metric, design.attacks, design.order), design,
                           xlabel="attack",
                           what=label[0].upper() + label[1:], caption="Aggregator x attack")
    if "nb_real_byz" in design.setting_fields:
        fields = [f for f in F_FIELDS if f in design.setting_fields]
        yield from _grid_plots("f", axis_grids(cases, fields, f_label, design.order), design, xlabel="attackers (f)",
                               what=worst, caption="Aggregator x f, worst case over attacks")
    if "heterogeneity" in design.setting_fields:
        grids = axis_grids(cases, ["heterogeneity"], lambda v: v["heterogeneity"], design.order)
        yield from _grid_plots("heterogeneity", grids, design, xlabel="heterogeneity", what=worst,
                               caption="Aggregator x heterogeneity, worst case over attacks")


def _panels(design: Design, setting: Setting, diagnostics: bool) -> dict[str, list[Line]]:
    panels: dict[str, list[Line]] = {a: [] for a in design.attacks}
    for g in (g for g in design.groups if g.setting == setting):
        panels[g.attack].append(Line(g.aggregator, g.metric_steps, g.distance_ratio) if diagnostics
                                else Line(g.aggregator, g.steps, g.accuracy))
    return {attack: lines for attack, lines in panels.items() if lines}


def curve_plots(design: Design, *, diagnostics: bool = False) -> Iterator[Plot]:
    """Per setting: accuracy vs step or round (or, with ``diagnostics``, the aggregate's relative distance)."""
    # "round" when the runs are federated (an identity with federated fields), else "step"
    axis = "round" if any(set(g.identity) & set(FEDERATED_FIELDS) for g in design.groups) else "step"
    for setting, slug in zip(design.settings, slugs(design.settings)):
        title = fixed_title(design.fixed, setting)
        if diagnostics:
            yield Plot(f"diagnostics{slug}", f"Aggregate's distance from the honest mean ({describe(setting)})",
                       curves(_panels(design, setting, True), title=title, band=False, log=True,
                              ylabel="|aggregate - honest mean| / |honest mean|", xlabel=axis,
                              order=design.aggregators))
        else:
            yield Plot(f"curves{slug}", f"Test accuracy vs {axis} ({describe(setting)})",
                       curves(_panels(design, setting, False), title=title, ylabel="test accuracy", xlabel=axis,
                              order=design.aggregators))


def plots(design: Design, summaries: Sequence[Summary], cases: Sequence[WorstCase], metric: str, *,
          diagnostics: bool) -> Iterator[Plot]:
    """Every figure of the report, one at a time (each can be saved and dropped before the next)."""
    yield from heatmaps(design, summaries, cases, metric)
    yield from curve_plots(design)
    if diagnostics:
        yield from curve_plots(design, diagnostics=True)
