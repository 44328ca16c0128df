"""report.md's privacy section: each group's accuracy beside the epsilon its runs spent.

Only a report holding runs with a privacy mechanism (``--privacy``) has it.
Per setting other than the mechanism, one row per mechanism, rule and attack,
sorted by epsilon: the accuracy as in the accuracy tables and the final
epsilon (at the mechanism's delta, the mean over seeds; seeds agree unless
their partitions differ), so that accuracy reads against privacy. Every
run's epsilon at each evaluation is in its evaluations.csv, the final one in
summary.json and table.csv.
"""
from __future__ import annotations

from collections.abc import Sequence

from simulator.core.privacy import PRIVACY
from simulator.report.naming import describe
from simulator.report.order import Order
from simulator.report.page import cell, table
from simulator.report.plots import METRIC_LABELS
from simulator.report.stats import Summary, final_epsilon

__all__ = ["section"]


def _mechanism(summary: Summary) -> str:
    """The group's privacy spec as a user writes it (the parameters that differ from their defaults)."""
    return PRIVACY.build(summary.group.identity["privacy"]).spec


def section(summaries: Sequence[Summary], metric: str, order: Order) -> str | None:
    """The privacy section, or None when no run had a privacy mechanism."""
    private = [s for s in summaries if s.group.epsilon is not None]
    if not private:
        return None
    parts = ["## Privacy: accuracy against epsilon", "",
             f"Each privacy mechanism, rule and attack: the accuracy by the `{metric}` metric "
             f"({METRIC_LABELS[metric]}) as in the accuracy tables, and the epsilon its runs spent by their last "
             f"evaluation (mean over seeds; lower is more private), sorted by epsilon."]

    def rest(s: Summary) -> tuple:
        return tuple((k, v) for k, v in s.group.setting if k != "privacy")

    for setting in sorted({rest(s) for s in private}, key=order.setting):
        mine = sorted((s for s in private if rest(s) == setting),
                      key=lambda s: (final_epsilon(s), order.aggregator(s.group.aggregator),
                                     order.attack(s.group.attack)))
        rows = [[_mechanism(s), s.group.aggregator, s.group.attack, cell(s.mean[metric], s.ci[metric], s.seeds),
                 f"{final_epsilon(s):.3g}"] for s in mine]
        parts += ["", *([f"### {describe(setting)}", ""] if setting else []),
                  table(["privacy", "aggregator", "attack", "accuracy", "epsilon"], rows)]
    return "\n".join(parts)
