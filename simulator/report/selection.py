"""Hyperparameter selection against the worst attack, on the validation set.

For one identity field that varies (``lr``, ``momentum``...), for each
aggregator and each setting without that field:

1. for each value of the field and each attack (``none`` excluded), average
   the validation accuracy curve over seeds and take its highest point;
2. the value's score is the lowest of these over the attacks (its worst case);
3. the chosen value is the one with the highest score (the first in value order
   on a tie); a value that lacks one of the attacks the others were run under
   is not a candidate, since its worst case is unknown.

The test accuracy reported at each value is measured the same way on the test
curve: per attack the highest point of the seed-averaged test curve, then the
lowest over the attacks.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from experiments.tools import UserException
from simulator.report.load import ROLE_FIELDS, Design, Group, Setting, order_key
from simulator.report.stats import threat, worst

__all__ = ["Choice", "select"]


@dataclass(frozen=True)
class Choice:
    """One candidate value of the selected field for one aggregator and setting."""

    aggregator: str
    setting: Setting  # without the selected field
    value: Any
    validation: dict[str, float]  # per attack: best of the seed-averaged validation curve
    test: dict[str, float]  # per attack: best of the seed-averaged test curve
    candidate: bool  # has every attack the others have
    chosen: bool

    @property
    def score(self) -> tuple[float, str]:
        """Worst case over attacks of the validation accuracy, and the attack reaching it."""
        return worst(self.validation)

    @property
    def test_worst(self) -> tuple[float, str]:
        return worst(self.test)


def _best(curve_by_seed) -> float:
    return float(curve_by_seed.mean(axis=0).max())


def _choices(aggregator: str, setting: Setting, groups: dict[Any, list[Group]]) -> list[Choice]:
    attacks = {a for gs in groups.values() for a in threat(g.attack for g in gs)}
    rows = [Choice(aggregator, setting, value, validation={g.attack: _best(g.val_accuracy) for g in gs},
                   test={g.attack: _best(g.accuracy) for g in gs}, candidate=attacks <= {g.attack for g in gs},
                   chosen=False)
            for value, gs in sorted(groups.items(), key=lambda item: order_key(item[0]))]
    scores = [c.score[0] if c.candidate and not math.isnan(c.score[0]) else -math.inf for c in rows]
    pick = max(range(len(rows)), key=lambda i: (scores[i], -i))  # none when no value has a score
    return [replace(c, chosen=i == pick and scores[pick] > -math.inf) for i, c in enumerate(rows)]


def select(design: Design, field: str) -> list[Choice]:
    """Every candidate value of ``field`` per aggregator and setting, the max-min one marked chosen."""
    where = str(design.root)
    if field in ROLE_FIELDS or field not in design.setting_fields:
        varying = ", ".join(design.setting_fields) or "none"
        raise UserException(f"Cannot select {field!r}: it is not a setting that varies across the runs under "
                            f"{where!r} (varying: {varying}).")
    if any(g.val_accuracy is None for g in design.groups):
        raise UserException(f"Cannot select {field!r}: runs under {where!r} have no validation accuracy "
                            "(rerun them with validation_split > 0).")
    buckets: dict[tuple[str, Setting], dict[Any, list[Group]]] = defaultdict(lambda: defaultdict(list))
    for g in design.groups:
        rest = tuple(p for p in g.setting if p[0] != field)
        buckets[g.aggregator, rest][dict(g.setting)[field]].append(g)
    ordered = sorted(buckets.items(), key=lambda i: (design.order.setting(i[0][1]), design.order.aggregator(i[0][0])))
    return [c for (aggregator, setting), groups in ordered for c in _choices(aggregator, setting, groups)]
