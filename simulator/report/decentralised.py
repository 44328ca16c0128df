"""report.md's decentralised section: the graphs, and the honest nodes beside their average model.

Only a report holding decentralised runs (``topology``) has it; the accuracy
tables and curves above it are the honest nodes' average model's, read as a
server run's. Per setting: the graph's facts (spectral gap of the honest nodes'
mixing matrix, the largest Byzantine weight delta_max, the largest share of
Byzantine neighbours, whether the honest nodes are connected; a range when the
seeds drew different graphs), and a rule x attack table of the worst honest
node's accuracy and the consensus distance at the last evaluation (mean over
seeds with the 95% half-width). Figures: the worst node's accuracy and the
consensus distance against the round. ``decentralised.csv`` holds the numbers.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from simulator.report.figures import Line, curves
from simulator.report.load import Design, Group
from simulator.report.naming import describe, fixed_title, slugs
from simulator.report.page import cell, table
from simulator.report.plots import Plot
from simulator.report.stats import mean_ci

__all__ = ["CSV", "FACTS", "plots", "rows", "section"]

CSV = "decentralised.csv"
FACTS = ("spectral_gap", "delta_max", "max_byzantine_share", "honest_connected")


def _groups(design: Design) -> list[Group]:
    return [g for g in design.groups if g.nodes is not None]


def _final(group: Group, key: str) -> tuple[float, float]:
    """Mean over seeds of a node curve's last value, and its 95% half-width."""
    mean, half = mean_ci(group.nodes[key][:, -1])
    return float(mean), float(half)


def _fact(groups: Sequence[Group], key: str) -> str:
    """A graph fact over the groups' seeds: one value, or its range when the seeds drew different graphs."""
    values = sorted({facts.get(key) for g in groups for facts in g.topologies or () if key in facts}, key=str)
    if not values:
        return "–"
    if isinstance(values[0], bool):
        return " / ".join("yes" if v else "no" for v in values)
    return f"{values[0]:.4g}" if len(values) == 1 else f"{min(values):.4g} to {max(values):.4g}"


def _distance(mean: float, half: float) -> str:
    spread = "" if math.isnan(half) else f" ± {half:.3g}"
    return f"{mean:.3g}{spread}"


def section(design: Design) -> str | None:
    """The decentralised section, or None when no run is decentralised."""
    groups = _groups(design)
    if not groups:
        return None
    parts = ["## Decentralised: the graph and the honest nodes", "",
             "The tables and curves above test the honest nodes' average model. Here: each setting's graph (the "
             "spectral gap of the honest nodes' mixing matrix, Byzantine weight moved to the diagonal; delta_max, "
             "the largest Byzantine weight of an honest node; the largest share of Byzantine neighbours; whether the "
             "honest nodes are connected), then, per rule and attack at the last evaluation, the worst tested "
             "honest node's own accuracy and the consensus distance (1/h) sum_i |x_i - mean|^2, means over seeds "
             "± the 95% half-width (number of seeds)."]
    for setting in sorted({g.setting for g in groups}, key=design.order.setting):
        mine = [g for g in groups if g.setting == setting]
        facts = table(["spectral gap", "delta_max", "largest Byzantine share", "honest nodes connected"],
                      [[_fact(mine, key) for key in FACTS]])
        attacks = sorted({g.attack for g in mine}, key=design.order.attack)
        rules = sorted({g.aggregator for g in mine}, key=design.order.aggregator)
        by_key = {(g.aggregator, g.attack): g for g in mine}
        body = []
        for rule in rules:
            cells = []
            for attack in attacks:
                g = by_key.get((rule, attack))
                if g is None:
                    cells.append("–")
                    continue
                worst, distance = _final(g, "worst_node_accuracy"), _final(g, "consensus_distance")
                cells.append(f"{cell(*worst, len(g.seeds))} / {_distance(*distance)}")
            body.append([rule, *cells])
        parts += ["", f"### {describe(setting)}", "", facts, "",
                  "Worst node's accuracy / consensus distance:", "", table(["aggregator", *attacks], body)]
    return "\n".join(parts)


def rows(design: Design) -> tuple[list[str], list[dict]] | None:
    """decentralised.csv: per group, the final node numbers (mean and half-width over seeds) and the graph's facts."""
    groups = _groups(design)
    if not groups:
        return None
    keys = ("worst_node_accuracy", "mean_node_accuracy", "consensus_distance")
    columns = ["aggregator", "attack", *design.setting_fields, "seeds",
               *(f"final_{k}_{part}" for k in keys for part in ("mean", "ci")), *FACTS]
    out = []
    for g in groups:
        finals = {f"final_{k}_{part}": "" if math.isnan(v) else round(v, 8)
                  for k in keys for part, v in zip(("mean", "ci"), _final(g, k))}
        out.append({"aggregator": g.aggregator, "attack": g.attack, **dict(g.setting), "seeds": len(g.seeds), **finals,
                    **{key: _fact([g], key) for key in FACTS}})
    return columns, out


def plots(design: Design) -> Iterator[Plot]:
    """Per setting with decentralised runs: the worst node's accuracy, and the consensus distance (log scale)."""
    settings = sorted({g.setting for g in _groups(design)}, key=design.order.setting)
    for setting, slug in zip(settings, slugs(settings)):
        mine = [g for g in _groups(design) if g.setting == setting]
        title = fixed_title(design.fixed, setting)
        for key, stem, caption, options in (
                ("worst_node_accuracy", "nodes-worst", "Worst honest node's accuracy vs round",
                 dict(ylabel="worst node's test accuracy")),
                ("consensus_distance", "nodes-consensus", "Consensus distance vs round",
                 dict(ylabel="(1/h) sum |x_i - mean|^2", band=False, log=True))):
            panels: dict[str, list[Line]] = {}
            for attack in sorted({g.attack for g in mine}, key=design.order.attack):
                panels[attack] = [Line(g.aggregator, g.steps[-g.nodes[key].shape[1]:], np.asarray(g.nodes[key]))
                                  for g in mine if g.attack == attack]
            yield Plot(f"{stem}{slug}", f"{caption} ({describe(setting)})",
                       curves(panels, title=title, xlabel="round", order=design.aggregators, **options))
