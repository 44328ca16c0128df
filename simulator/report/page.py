"""report.md: one Markdown page, section by section, from the report's numbers.

Sections: what was run; the accuracy tables (aggregator x attack per
setting); the worst case over attacks; the best rule per setting; under
targeted attacks, the backdoor section (`simulator.report.backdoor`); with a
privacy mechanism, accuracy against epsilon (`simulator.report.privacy`); the
figures (relative links); the hyperparameter selection when one was asked.
Rules, attacks and settings follow the design's order (the grid file's, when
the report was given the grid's expansion).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from simulator.report.grids import attack_grids
from simulator.report.load import ATTACK_FREE, Design
from simulator.report.naming import SHORT, describe, fixed_rows
from simulator.report.order import Order
from simulator.report.plots import METRIC_LABELS
from simulator.report.selection import Choice
from simulator.report.stats import LAST, RANGE, Summary, WorstCase, best_rules, interval

__all__ = ["render"]


def number(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"


def cell(mean: float, ci: float, seeds: int) -> str:
    """``0.912 ± 0.013 (3)``: mean over seeds, 95% half-width, number of seeds; ``0.213 [0.000, 1.000] (3)``
    when the interval runs outside [0, 1] and is shown clipped to it."""
    if math.isnan(ci) or math.isnan(mean):
        spread = ""
    elif mean - ci < RANGE[0] or mean + ci > RANGE[1]:
        spread = " [{:.3f}, {:.3f}]".format(*interval(mean, ci))
    else:
        spread = f" ± {ci:.3f}"
    return f"{number(mean)}{spread} ({seeds})"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pipes in cells escaped)."""
    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def _overview(design: Design) -> str:
    seeds = sorted({s for g in design.groups for s in g.seeds})
    counts = sorted({len(g.seeds) for g in design.groups})
    per_group = str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    values = {k: sorted({dict(g.setting)[k] for g in design.groups}, key=lambda v, k=k: design.order.value(k, v))
              for k in design.setting_fields}
    lines = [
        "## What was run", "",
        f"- {design.runs} finished runs in {len(design.groups)} groups (aggregator x attack x setting); "
        f"{per_group} seed{'s' if counts[-1] > 1 else ''} per group (seeds {', '.join(map(str, seeds))}).",
        f"- Aggregators: {', '.join(design.aggregators)}.",
        f"- Attacks: {', '.join(design.attacks)} (`{ATTACK_FREE}` is the attack-free reference).",
        *(f"- Varies: `{k}`{f' ({SHORT[k]})' if k in SHORT else ''}: "
          f"{', '.join('unused' if x is None else str(x) for x in v)}." for k, v in values.items()),
    ]
    if design.unfinished:
        lines.append(f"- {design.unfinished} unfinished run folders (no summary.json) were left out.")
    if design.diverged:
        runs = ", ".join(f"`{name}` (step {step})" for name, step in design.diverged)
        lines.append(f"- {len(design.diverged)} run{'s' if len(design.diverged) > 1 else ''} diverged (the step of "
                     f"the first evaluation whose test loss is NaN or infinite; the accuracies from there on are a "
                     f"broken model's): {runs}.")
    fixed = [(f"`{k}`", f"`{v}`") for k, v in fixed_rows(design.fixed)]
    return "\n".join([*lines, "", "Fixed settings, common to every run (what defines the experiment; other options "
                               "are listed only where they differ from their default):", "",
                      table(["field", "value"], fixed)])


def _accuracy(design: Design, summaries: Sequence[Summary], metric: str) -> str:
    by_key = {(s.group.setting, s.group.aggregator, s.group.attack): s for s in summaries}
    parts = [f"## Accuracy: {METRIC_LABELS[metric]}", "",
             f"Each cell: mean over seeds ± half-width of the 95% Student-t confidence interval (number of "
             f"seeds). Where that interval runs outside [{RANGE[0]:g}, {RANGE[1]:g}], the range of an accuracy, "
             f"the cell shows it clipped to that range as [low, high]. `final` is the accuracy at the last "
             f"evaluation, `best` the highest over the evaluations, `last5` the mean of the last {LAST}; all "
             f"three are in `table.csv`."]
    for grid in attack_grids(summaries, metric, design.attacks, design.order):
        rows = []
        for aggregator in grid.rows:
            found = [by_key.get((grid.setting, aggregator, a)) for a in grid.columns]
            rows.append([aggregator, *(cell(s.mean[metric], s.ci[metric], s.seeds) if s else "–" for s in found)])
        parts += ["", f"### {describe(grid.setting)}", "", table(["aggregator", *grid.columns], rows)]
    return "\n".join(parts)


def _worst(cases: Sequence[WorstCase], metric: str, order: Order) -> str:
    parts = ["## Worst case over attacks", "",
             f"Per rule, its lowest {METRIC_LABELS[metric]} (mean over seeds) over the attacks, `{ATTACK_FREE}` "
             "excluded, beside its attack-free accuracy and the drop between the two. The best rule is the one "
             "whose worst case is highest. A setting without its own attack-free runs takes them from the setting "
             "that differs from it only by the worker counts (the same number of honest workers preferred)."]
    best = best_rules(cases, order)
    for setting in sorted({w.setting for w in cases}, key=order.setting):
        own = [w for w in cases if w.setting == setting]
        rows = [[w.aggregator, number(w.value), w.attack or "–", number(w.attack_free), number(w.drop)] for w in own]
        winners = best.get(setting, [])
        line = (" = ".join(f"**{w.aggregator}**" for w in winners) +
                f" (worst case {number(winners[0].value)})") if winners else "none (no attack was run)"
        reference = next((w.reference for w in own if w.reference is not None), None)
        note = ["", f"No attack: the `{ATTACK_FREE}` runs of {describe(reference)}."] if reference else []
        parts += ["", f"### {describe(setting)}", "",
                  table(["aggregator", "worst case", "worst attack", "no attack", "drop"], rows), *note, "",
                  f"Best rule: {line}."]
    return "\n".join(parts)


def _best(cases: Sequence[WorstCase], order: Order) -> str:
    rows = [[describe(s), " = ".join(w.aggregator for w in ws), number(ws[0].value),
             ", ".join(sorted({w.attack for w in ws}, key=order.attack))]
            for s, ws in best_rules(cases, order).items()]
    return "\n".join(["## Best rule per setting", "",
                      table(["setting", "best rule", "worst case", "worst attack"], rows)])


def _figures(figures: Sequence[tuple[str, str]], formats: Sequence[str]) -> str:
    parts = ["## Figures", "",
             "Heatmaps share one colour scale, [0, 1]. In the f and heterogeneity heatmaps each cell is the "
             "worst case over attacks, with the attack reaching it. Curves show the mean over seeds with its "
             "95% confidence band, clipped to [0, 1]."]
    for link, caption in figures:
        parts += ["", f"### {caption}", "", f"![{caption}]({link}.png)"]
        if "pdf" in formats:
            parts += ["", f"[PDF]({link}.pdf)"]
    return "\n".join(parts)


def _selection(choices: Sequence[Choice], field: str, order: Order) -> str:
    attacks = sorted({a for c in choices for a in c.test}, key=order.attack)
    parts = [f"## Selection of `{field}` against the worst attack", "",
             f"For each rule and setting, each value of `{field}` is scored by its worst case over the attacks "
             f"(`{ATTACK_FREE}` excluded) of the best validation accuracy (the highest point of the "
             "seed-averaged validation curve); the value with the highest score is chosen (**bold**). Test "
             "columns: the highest point of the seed-averaged test curve per attack, and their worst case."]
    for setting in sorted({c.setting for c in choices}, key=order.setting):
        rows = []
        for c in (c for c in choices if c.setting == setting):
            mark = (lambda text: f"**{text}**") if c.chosen else str
            rows.append([mark(c.aggregator), mark(c.value), f"{number(c.score[0])} ({c.score[1] or '–'})",
                         *(number(c.test.get(a, math.nan)) for a in attacks),
                         f"{number(c.test_worst[0])} ({c.test_worst[1] or '–'})"])
        header = ["aggregator", field, "validation worst case", *(f"test: {a}" for a in attacks), "test worst case"]
        parts += ["", f"### {describe(setting)}", "", table(header, rows)]
        chosen = [c for c in choices if c.setting == setting and c.chosen]
        if chosen:
            top = max(c.test_worst[0] for c in chosen)
            names = " = ".join(f"**{c.aggregator}**" for c in chosen if c.test_worst[0] == top)
            parts += ["", f"Best rule at its chosen `{field}`: {names} (test worst case {number(top)})."]
    return "\n".join(parts)


def render(design: Design, summaries: Sequence[Summary], cases: Sequence[WorstCase], metric: str, *,
           figures: Sequence[tuple[str, str]], choices: Sequence[Choice] | None = None,
           field: str | None = None, formats: Sequence[str] = ("png", "pdf"), backdoor: str | None = None,
           privacy: str | None = None, decentralised: str | None = None) -> str:
    """The whole page; ``figures`` are (link without suffix, caption) pairs relative to report.md; ``backdoor``
    and ``privacy`` the backdoor and privacy sections' text, if any; ``decentralised`` the nodes' section
    (`simulator.report.decentralised`)."""
    sections = [f"# Robustness report: {design.root.resolve().name}", _overview(design),
                _accuracy(design, summaries, metric), _worst(cases, metric, design.order),
                _best(cases, design.order), *([backdoor] if backdoor else []), *([privacy] if privacy else []),
                *([decentralised] if decentralised else []), _figures(figures, formats)]
    if choices is not None and field is not None:
        sections.append(_selection(choices, field, design.order))
    return "\n\n".join(sections) + "\n"
