"""report.md's backdoor section: clean accuracy beside the attack success rate under targeted attacks.

Only a report holding runs of a targeted attack has it (nothing changes for
the others). Per setting: a rule x targeted attack table, each attack's
clean accuracy and ASR side by side; each rule's worst case over the
targeted attacks, its highest ASR (lower is better), and the rule whose worst
case is lowest; and, where an attack's schedule stopped before the run's
end, the ASR k steps after its last attacked step (its durability).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from simulator.report.naming import describe
from simulator.report.order import Order
from simulator.report.page import cell, number, table
from simulator.report.plots import METRIC_LABELS
from simulator.report.stats import Summary, WorstCase, best_rules

__all__ = ["DURABILITY_COLUMNS", "section"]

DURABILITY_COLUMNS = 6  # at most this many "k steps after" columns, spread from the first to the last


def _spread(values: list[int], most: int = DURABILITY_COLUMNS) -> list[int]:
    """At most ``most`` of the sorted ``values``, evenly spread, the first and last included."""
    if len(values) <= most:
        return values
    return [values[i] for i in sorted({round(x) for x in np.linspace(0, len(values) - 1, most)})]


def _side_by_side(mine: Sequence[Summary], metric: str, order: Order) -> str:
    rows = sorted({s.group.aggregator for s in mine}, key=order.aggregator)
    attacks = sorted({s.group.attack for s in mine}, key=order.attack)
    by_key = {(s.group.aggregator, s.group.attack): s for s in mine}
    header = ["aggregator", *(f"{a}: {label}" for a in attacks for label in ("accuracy", "ASR"))]
    body = []
    for aggregator in rows:
        cells = []
        for attack in attacks:
            s = by_key.get((aggregator, attack))
            asr = s.of("asr") if s else None
            cells += [cell(s.mean[metric], s.ci[metric], s.seeds) if s else "–",
                      cell(asr[0][metric], asr[1][metric], s.seeds) if asr else "–"]
        body.append([aggregator, *cells])
    return table(header, body)


def _durability(mine: Sequence[Summary], order: Order) -> list[str]:
    lasting = sorted((s for s in mine if s.group.asr_after), key=lambda s: (order.aggregator(s.group.aggregator),
                                                                            order.attack(s.group.attack)))
    if not lasting:
        return []
    ks = _spread(sorted({k for s in lasting for k in s.group.asr_after}))
    rows = [[s.group.aggregator, s.group.attack,
             *(number(float(s.group.asr_after[k].mean())) if k in s.group.asr_after else "–" for k in ks)]
            for s in lasting]
    return ["", "ASR (mean over seeds) k steps after the attack's last attacked step, where its schedule stopped "
                "before the run's end (k = 0: the evaluation right after it):", "",
            table(["aggregator", "attack", *(f"k={k}" for k in ks)], rows)]


def section(summaries: Sequence[Summary], cases: Sequence[WorstCase], metric: str, order: Order) -> str | None:
    """The backdoor section, or None when no run had a targeted attack; ``cases`` are the ASR worst cases."""
    targeted = [s for s in summaries if s.of("asr") is not None]
    if not targeted:
        return None
    parts = ["## Backdoor: clean accuracy and attack success rate", "",
             f"Under the targeted attacks, each rule's clean test accuracy beside the attack success rate (ASR: "
             f"the share of the triggered test inputs of the other classes that the model classifies as the "
             f"attack's target; lower is better); each cell as in the accuracy tables, by the `{metric}` "
             f"metric ({METRIC_LABELS[metric]}; `best` of an ASR is its highest). The worst case of a rule is "
             f"its highest ASR over the targeted attacks; the best rule is the one whose worst case is lowest. "
             f"Robust accuracy (the share of the triggered inputs that keep their true label) is in `table.csv`."]
    best = best_rules(cases, order)
    for setting in sorted({s.group.setting for s in targeted}, key=order.setting):
        mine = [s for s in targeted if s.group.setting == setting]
        accuracy = {(s.group.aggregator, s.group.attack): s.mean[metric] for s in mine}
        own = [w for w in cases if w.setting == setting]
        rows = [[w.aggregator, number(w.value), w.attack or "–",
                 number(accuracy.get((w.aggregator, w.attack), math.nan))] for w in own]
        winners = best.get(setting, [])
        line = (" = ".join(f"**{w.aggregator}**" for w in winners) +
                f" (worst ASR {number(winners[0].value)})") if winners else "none"
        parts += ["", f"### {describe(setting)}", "", _side_by_side(mine, metric, order), "",
                  table(["aggregator", "worst ASR", "worst attack", "accuracy under it"], rows), "",
                  f"Best rule against the backdoors: {line}.", *_durability(mine, order)]
    return "\n".join(parts)
