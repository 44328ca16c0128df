"""Numbers of the report: per-group accuracy over seeds, worst case over attacks, best rule.

Each group's accuracy is summarised three ways, per seed, then averaged over
seeds with a 95% Student-t confidence interval (t_{0.975, k-1} s / sqrt(k),
NaN for a single seed). The half-width is kept as computed (claims compare
it); the interval a reader is shown, `interval`, is clipped to [0, 1], the
range of an accuracy, since the symmetric interval of a few spread-out seeds
can run outside it:

- ``final``: accuracy at the last evaluation;
- ``best``: the highest accuracy over the evaluations;
- ``last5``: the mean of the last five evaluations (all of them if fewer).

The worst case of a rule is its lowest mean over the attacks, the attack-free
reference ``none`` excluded (unless it is the only attack run); the best rule
of a setting is the one whose worst case is highest.

Under a targeted (backdoor) attack a group also has its attack success rate
and robust accuracy, summarised the same three ways (``best``: the highest
over the evaluations). Lower is better for the ASR: its worst case over the
targeted attacks is the highest ASR, and the best rule the one whose worst
case is lowest (`worst_cases` with ``quantity="asr"``). A setting's attack-free
accuracy comes from its own ``none`` runs or, where a grid runs the reference
apart (the n - f honest workers alone, or n workers none of them Byzantine),
from the setting that differs from it only by the worker counts.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import t as student_t

from simulator.report.load import ATTACK_FREE, Design, Group, Setting, attack_key
from simulator.report.order import BY_NAME, Order

__all__ = ["COUNT_FIELDS", "LAST", "METRICS", "QUANTITIES", "RANGE", "Summary", "WorstCase", "best_rules",
           "final_epsilon", "interval", "mean_ci", "per_seed", "references", "summarise", "threat", "worst",
           "worst_cases"]

METRICS = ("final", "best", "last5")
RANGE = (0.0, 1.0)  # every metric is an accuracy
LAST = 5
COUNT_FIELDS = ("nb_workers", "nb_real_byz", "nb_decl_byz")  # the worker counts an attack-free reference may change
QUANTITIES = ("accuracy", "asr", "robust_accuracy")  # what a summary holds; only the ASR is better when lower


def per_seed(accuracy: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric of a [seeds, evaluations] accuracy matrix, one value per seed."""
    return {"final": accuracy[:, -1], "best": accuracy.max(axis=1), "last5": accuracy[:, -LAST:].mean(axis=1)}


def mean_ci(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``axis`` and the half-width of its 95% Student-t interval (NaN for one sample)."""
    k = values.shape[axis]
    mean = values.mean(axis=axis)
    if k < 2:
        return mean, np.full_like(mean, np.nan, dtype=float)
    return mean, student_t.ppf(0.975, k - 1) * values.std(axis=axis, ddof=1) / math.sqrt(k)


def interval(mean: float, half: float, bounds: tuple[float, float] = RANGE) -> tuple[float, float]:
    """The interval ``mean ± half`` clipped to ``bounds`` (NaN, NaN when the half-width is undefined)."""
    if math.isnan(half):
        return math.nan, math.nan
    return max(bounds[0], mean - half), min(bounds[1], mean + half)


@dataclass(frozen=True)
class Summary:
    """One group's metrics over its seeds: mean and 95% interval half-width per metric."""

    group: Group
    mean: dict[str, float]
    ci: dict[str, float]
    # a targeted attack's ASR and robust accuracy: quantity -> (mean, half-width) per metric; empty otherwise
    backdoor: dict[str, tuple[dict[str, float], dict[str, float]]] = field(default_factory=dict)

    @property
    def seeds(self) -> int:
        return len(self.group.seeds)

    def interval(self, metric: str) -> tuple[float, float]:
        """The 95% interval of ``metric``, clipped to [0, 1] (`interval`)."""
        return interval(self.mean[metric], self.ci[metric])

    def of(self, quantity: str) -> tuple[dict[str, float], dict[str, float]] | None:
        """(mean, half-width) per metric of ``quantity`` (`QUANTITIES`); None where the group did not measure it."""
        return (self.mean, self.ci) if quantity == "accuracy" else self.backdoor.get(quantity)


def _stats(curves: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and half-width over seeds of each metric of a [seeds, evaluations] curve."""
    stats = {name: mean_ci(values) for name, values in per_seed(curves).items()}
    return {k: float(m) for k, (m, _) in stats.items()}, {k: float(h) for k, (_, h) in stats.items()}


def summarise(design: Design) -> list[Summary]:
    """One summary per group, in the design's order."""
    return [Summary(g, *_stats(g.accuracy), {quantity: _stats(getattr(g, quantity)) for quantity in QUANTITIES[1:]
                                              if getattr(g, quantity) is not None}) for g in design.groups]


def final_epsilon(summary: Summary) -> float:
    """The privacy a group's runs spent by their last evaluation, the mean over seeds (NaN without privacy)."""
    epsilon = summary.group.epsilon
    return math.nan if epsilon is None else float(epsilon[:, -1].mean())


def threat(attacks: Iterable[str]) -> list[str]:
    """The attacks a worst case is taken over: all but ``none``, or ``none`` when it is all there is."""
    attacks = sorted(set(attacks), key=attack_key)
    return [a for a in attacks if a != ATTACK_FREE] or attacks


def worst(values: Mapping[str, float], *, highest: bool = False) -> tuple[float, str]:
    """Lowest value over the threat attacks and the attack reaching it (first in attack order on ties); with
    ``highest``, the highest value (an attack success rate's worst case)."""
    sign = -1.0 if highest else 1.0
    candidates = [(sign * values[a], attack_key(a), a) for a in threat(values) if not math.isnan(values[a])]
    value, _, attack = min(candidates, default=(math.nan, None, ""))
    return sign * value, attack


@dataclass(frozen=True)
class WorstCase:
    """A rule's lowest accuracy over the attacks in one setting, beside its attack-free accuracy."""

    aggregator: str
    setting: Setting
    value: float
    attack: str
    attack_free: float  # NaN when the attack-free run is missing
    reference: Setting | None = None  # the setting whose `none` runs gave attack_free, when not this one
    quantity: str = "accuracy"  # or "asr": the highest ASR over the targeted attacks, lower is better

    @property
    def drop(self) -> float:
        return self.attack_free - self.value

    @property
    def lower_is_better(self) -> bool:
        return self.quantity == "asr"


def references(summaries: Sequence[Summary]) -> dict[Setting, Setting]:
    """Per setting, the setting whose ``none`` runs are its attack-free reference.

    Its own when it ran ``none``; otherwise the one setting with ``none`` runs that differs from it only by
    `COUNT_FIELDS`, preferring the same number of honest workers (n - f); none when that is ambiguous.
    """
    def count(identity: dict) -> int | None:  # None for a federated pool (its rounds set the number of workers)
        n = identity.get("nb_workers")
        return None if n is None else n - identity["nb_real_byz"]

    honest = {s.group.setting: count(s.group.identity) for s in summaries}
    free = {s.group.setting for s in summaries if s.group.attack == ATTACK_FREE}

    def rest(setting: Setting) -> Setting:
        return tuple(item for item in setting if item[0] not in COUNT_FIELDS)

    out = {}
    for setting in honest:
        if setting in free:
            out[setting] = setting
            continue
        candidates = [s for s in free if rest(s) == rest(setting)]
        same = [s for s in candidates if honest[s] == honest[setting]]
        if len(same) == 1 or (not same and len(candidates) == 1):
            out[setting] = (same or candidates)[0]
    return out


def worst_cases(summaries: Sequence[Summary], metric: str, order: Order = BY_NAME,
                quantity: str = "accuracy") -> list[WorstCase]:
    """For each aggregator and setting (in ``order``), the worst case of ``metric``'s mean over the attacks.

    ``quantity="asr"``: over the targeted attacks (the groups that measured an ASR), the highest ASR; its
    attack-free value is NaN (no backdoor to test without an attack).
    """
    table: dict[tuple[Setting, str], dict[str, float]] = defaultdict(dict)
    for s in summaries:
        if s.of(quantity) is not None:
            table[s.group.setting, s.group.aggregator][s.group.attack] = s.of(quantity)[0][metric]
    refs = references(summaries) if quantity == "accuracy" else {}
    out = []
    for (setting, aggregator), values in table.items():
        value, attack = worst(values, highest=quantity == "asr")
        ref = refs.get(setting)
        free = math.nan if ref is None else table.get((ref, aggregator), {}).get(ATTACK_FREE, math.nan)
        out.append(WorstCase(aggregator, setting, value, attack, free, None if ref in (None, setting) else ref,
                             quantity))
    return sorted(out, key=lambda w: (order.setting(w.setting), order.aggregator(w.aggregator)))


def best_rules(cases: Sequence[WorstCase], order: Order = BY_NAME) -> dict[Setting, list[WorstCase]]:
    """Per setting (in ``order``), the rule(s) whose worst case is highest (several on a tie); lowest for an ASR."""
    by_setting: dict[Setting, list[WorstCase]] = defaultdict(list)
    for w in cases:
        if not math.isnan(w.value):
            by_setting[w.setting].append(w)
    best = lambda ws: min(x.value for x in ws) if ws[0].lower_is_better else max(x.value for x in ws)  # noqa: E731
    return {s: [w for w in ws if w.value == best(ws)]
            for s, ws in sorted(by_setting.items(), key=lambda item: order.setting(item[0]))}
