"""The report's CSV files as rows: table.csv, worst_case.csv, selection.csv.

Numbers are rounded to 6 decimals; an undefined number (the confidence
interval of a single seed, a missing attack-free run) is an empty cell.
``*_ci`` is the Student-t half-width as computed; ``*_low`` and ``*_high``
are the interval's ends clipped to [0, 1], the range of an accuracy.
Setting fields are columns named as in the run identity (``nb_real_byz``...).
Where targeted attacks were run, table.csv also has ``asr_*`` and
``robust_accuracy_*`` columns (empty for the other attacks), and
worst_asr.csv the highest ASR per rule over the targeted attacks. Where runs
had a privacy mechanism, ``epsilon_mean`` is the final epsilon over seeds.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from simulator.report.order import BY_NAME, Order
from simulator.report.naming import describe
from simulator.report.selection import Choice
from simulator.report.stats import METRICS, QUANTITIES, Summary, WorstCase, best_rules, final_epsilon, interval

__all__ = ["selection_rows", "summary_rows", "worst_case_rows"]


def _num(value: float) -> float | str:
    return "" if value is None or math.isnan(value) else round(float(value), 6)


def summary_rows(summaries: Sequence[Summary], fields: Sequence[str]) -> tuple[list[str], list[dict]]:
    """table.csv: one row per group, each metric's mean, 95% half-width and clipped interval over seeds (and,
    after the canonical specs, the same for the ASR and robust accuracy where a targeted attack was run)."""
    stats = [f"{m}_{part}" for m in METRICS for part in ("mean", "ci", "low", "high")]
    backdoor = [q for q in QUANTITIES[1:] if any(s.of(q) is not None for s in summaries)]
    private = any(s.group.epsilon is not None for s in summaries)
    columns = ["aggregator", "attack", *fields, "seeds", *stats, "aggregator_canonical", "attack_canonical",
               *(f"{q}_{m}_{part}" for q in backdoor for m in METRICS for part in ("mean", "ci", "low", "high")),
               *(["epsilon_mean"] if private else [])]
    rows = [{"aggregator": s.group.aggregator, "attack": s.group.attack, **dict(s.group.setting),
             "seeds": s.seeds, **{f"{m}_mean": _num(s.mean[m]) for m in METRICS},
             **{f"{m}_ci": _num(s.ci[m]) for m in METRICS},
             **{f"{m}_{end}": _num(value) for m in METRICS for end, value in zip(("low", "high"), s.interval(m))},
             "aggregator_canonical": s.group.identity["aggregator"],
             "attack_canonical": s.group.identity["attack"],
             **{key: value for q in backdoor for key, value in _quantity(s, q).items()},
             **({"epsilon_mean": _num(final_epsilon(s))} if private else {})} for s in summaries]
    return columns, rows


def _quantity(summary: Summary, quantity: str) -> dict[str, float | str]:
    """The ``quantity`` columns of one table.csv row: mean, half-width and clipped interval per metric."""
    if summary.of(quantity) is None:
        return {}
    mean, ci = summary.of(quantity)
    return {f"{quantity}_{m}_{part}": _num(value) for m in METRICS
            for part, value in zip(("mean", "ci", "low", "high"), (mean[m], ci[m], *interval(mean[m], ci[m])))}


def worst_case_rows(cases: Sequence[WorstCase], fields: Sequence[str], metric: str) -> tuple[list[str], list[dict]]:
    """worst_case.csv: per aggregator and setting, the lowest mean over attacks and which attack.

    ``attack_free_from`` names the setting the attack-free accuracy was taken from when it is not the row's own.
    """
    columns = ["aggregator", *fields, "metric", "worst_case", "worst_attack", "attack_free", "attack_free_from",
               "drop", "best_rule"]
    winners = {(w.setting, w.aggregator) for ws in best_rules(cases).values() for w in ws}
    rows = [{"aggregator": w.aggregator, **dict(w.setting), "metric": metric, "worst_case": _num(w.value),
             "worst_attack": w.attack, "attack_free": _num(w.attack_free),
             "attack_free_from": "" if w.reference is None else describe(w.reference), "drop": _num(w.drop),
             "best_rule": (w.setting, w.aggregator) in winners} for w in cases]
    return columns, rows


def selection_rows(choices: Sequence[Choice], fields: Sequence[str], field: str,
                   order: Order = BY_NAME) -> tuple[list[str], list[dict]]:
    """selection.csv: every candidate value per aggregator and setting; the chosen one marked."""
    attacks = sorted({a for c in choices for a in c.test}, key=order.attack)
    rest = [f for f in fields if f != field]
    columns = ["aggregator", *rest, field, "validation_worst_case", "validation_worst_attack",
               *(f"test[{a}]" for a in attacks), "test_worst_case", "test_worst_attack", "candidate", "chosen"]
    rows = [{"aggregator": c.aggregator, **dict(c.setting), field: c.value,
             "validation_worst_case": _num(c.score[0]), "validation_worst_attack": c.score[1],
             **{f"test[{a}]": _num(c.test.get(a, math.nan)) for a in attacks},
             "test_worst_case": _num(c.test_worst[0]), "test_worst_attack": c.test_worst[1],
             "candidate": c.candidate, "chosen": c.chosen} for c in choices]
    return columns, rows

