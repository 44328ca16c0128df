"""What a reproduction study is: a grid, the paper's reference numbers, and claims checked on our results.

A study is data, kept in ``simulator/studies/papers/``: a grid file
``<name>.toml`` (named grids ``full`` and ``quick``), the paper's numbers as
plain values, its claims, each the paper's own statement (quoted with where it
says it) and a small function from the result table to a `Verdict` (our
numbers, the paper's, and holds / does not hold / undecided / not comparable,
with one sentence of reason), optionally a comparison table (our number beside
the paper's in every cell the paper reports), and ``<name>.md``: what differs
from the paper's setup and what the committed results show.

A verdict is decided with its uncertainty (`decide`): a measured quantity whose
95% interval over seeds contains the claim's bar is **undecided**, whichever
side of the bar its mean falls on; several such decisions combine with
`combine` (all hold: holds; any fails: does not hold; else undecided), and a
claim about a share of cases counts them with `Tally` (the share at worst and
at best over the undecided cases). A difference of groups that ran the same
seeds is taken seed by seed (`Results.combination`), which keeps what the seeds
share out of its interval. Under a targeted attack the same reads take ``of="asr"``
or ``of="robust_accuracy"``: the attack success rate or the robust accuracy
instead of the clean accuracy (`simulator.report.stats.QUANTITIES`), and
`Results.asr_after` reads a backdoor's durability, its ASR k steps after the
attack's last attacked step. Decentralised runs also take ``of="mean_node_accuracy"``
or ``of="worst_node_accuracy"``: the honest nodes' own models (`NODE_ACCURACIES`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator.core.config import PARTS
from simulator.report.load import Group
from simulator.report.stats import QUANTITIES, Summary, mean_ci, per_seed

__all__ = ["HOLDS", "FAILS", "UNDECIDED", "NOT_COMPARABLE", "SHOWN", "Verdict", "Claim", "Study", "Results",
           "Estimate", "Tally", "NODE_ACCURACIES", "canonical", "decide", "within", "combine", "reason",
           "missing"]

HOLDS, FAILS, UNDECIDED, NOT_COMPARABLE = "holds", "does not hold", "undecided", "not comparable"
SHOWN = ("final", "best")  # accuracies every claims table shows beside the study's own (a late collapse shows)

NODE_ACCURACIES = ("mean_node_accuracy", "worst_node_accuracy")  # decentralised runs' curves of the nodes' models
CURVES = QUANTITIES + NODE_ACCURACIES  # what ``of`` may read
Quantity = str | Callable[[np.ndarray], np.ndarray]  # a metric name, or [seeds, evaluations] -> one value a seed


@dataclass(frozen=True)
class Estimate:
    """A measured quantity: its mean over seeds and the half-width of its 95% interval (NaN: unknown)."""

    mean: float
    half: float

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> "Estimate":
        """The mean of per-seed values and its 95% Student-t half-width (NaN for one value, both for none)."""
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            return cls(math.nan, math.nan)
        mean, half = mean_ci(values)
        return cls(float(mean), float(half))

    def __sub__(self, other: "Estimate") -> "Estimate":
        """The difference of two independent estimates; the half-widths add in quadrature."""
        return Estimate(self.mean - other.mean, math.hypot(self.half, other.half))

    def text(self, scale: float = 100.0, digits: int = 1) -> str:
        """``mean ± half`` in points (``scale`` 100) or as given; the interval is left out when unknown."""
        mean = f"{scale * self.mean:.{digits}f}"
        mean = mean[1:] if mean.startswith("-") and not mean.strip("-0.") else mean  # no "-0.0"
        return mean if math.isnan(self.half) else f"{mean} ± {scale * self.half:.{digits}f}"

    def cell(self, missing: str = "-") -> str:
        """The mean alone, in percent to one decimal, for a table's cell; ``missing`` when unknown."""
        return missing if math.isnan(self.mean) else f"{100 * self.mean:.1f}"


def decide(estimate: Estimate, bar: float, above: bool = True) -> str:
    """HOLDS when the estimate clears ``bar`` (is above it, or below with ``above=False``) beyond its interval,
    FAILS when it misses it beyond its interval, UNDECIDED when the bar lies within the 95% interval.

    An estimate without an interval (one seed) is decided by its mean alone; a NaN mean is NOT_COMPARABLE.
    """
    if math.isnan(estimate.mean):
        return NOT_COMPARABLE
    if not math.isnan(estimate.half) and abs(estimate.mean - bar) <= estimate.half:
        return UNDECIDED
    return HOLDS if (estimate.mean > bar) == above else FAILS


def within(estimate: Estimate, bar: float) -> str:
    """Whether a difference is within ``bar`` of zero either way: HOLDS when its whole interval is, FAILS when
    its whole interval lies beyond ``bar`` on one side, else UNDECIDED."""
    return combine([decide(estimate, -bar, above=True), decide(estimate, bar, above=False)])


def reason(status: str, holds: str, fails: str, undecided: str) -> str:
    """A verdict's reason: the sentence for its status (undecided's for anything but holds and fails)."""
    return {HOLDS: holds, FAILS: fails}.get(status, undecided)


def missing(what: str, paper: str = "") -> Verdict:
    """The verdict of a claim whose runs are not in the table: ``what`` did not run."""
    return Verdict(NOT_COMPARABLE, "missing runs", paper, f"{what} did not run")


def combine(statuses: Iterable[str]) -> str:
    """One status for a claim that needs every part: all hold, any fails, else undecided (or not comparable)."""
    statuses = list(statuses)
    if not statuses or NOT_COMPARABLE in statuses:
        return NOT_COMPARABLE
    if FAILS in statuses:
        return FAILS
    return HOLDS if all(s == HOLDS for s in statuses) else UNDECIDED


@dataclass(frozen=True)
class Tally:
    """How many cases meet a condition among the cases it applies to, at worst and at best for the claim.

    Each case is a pair of statuses, (applies, meets). At worst every undecided case goes against the claim: an
    undecided ``meets`` is a miss, and a case that may or may not apply counts only if it could be a miss; at
    best the other way round. A case with a NOT_COMPARABLE status (runs missing) is left out and counted apart.
    """

    worst: tuple[int, int]  # (met, counted)
    best: tuple[int, int]
    missing: int = 0

    @classmethod
    def of(cls, cases: Iterable[tuple[str, str]]) -> "Tally":
        worst, best, missing = [0, 0], [0, 0], 0
        for applies, meets in cases:
            if NOT_COMPARABLE in (applies, meets):
                missing += 1
            elif applies == HOLDS:
                worst[0] += meets == HOLDS
                best[0] += meets != FAILS
                worst[1] += 1
                best[1] += 1
            elif applies == UNDECIDED:
                worst[1] += meets != HOLDS  # counted only as a miss
                best[0] += meets != FAILS
                best[1] += meets != FAILS  # counted only as a success
        return cls((worst[0], worst[1]), (best[0], best[1]), missing)

    @classmethod
    def count(cls, statuses: Iterable[str]) -> "Tally":
        """Cases the condition applies to alike: one status each, whether it is met."""
        return cls.of((HOLDS, s) for s in statuses)

    def decide(self, share: float, strictly: bool = False) -> str:
        """Whether the share of cases meeting the condition is at least ``share`` (above it with ``strictly``):
        HOLDS when it is at worst, FAILS when it is not even at best, else UNDECIDED; NOT_COMPARABLE when no case
        applies."""
        if self.best[1] == 0:
            return NOT_COMPARABLE

        def passes(met: int, counted: int) -> bool:
            return counted > 0 and (met / counted > share if strictly else met / counted >= share)

        if passes(*self.worst):
            return HOLDS
        return UNDECIDED if passes(*self.best) else FAILS

    def text(self) -> str:
        """``met/counted``, or ``a/b (worst) to c/d (best)`` when undecided cases leave it open."""
        (a, b), (c, d) = self.worst, self.best
        shown = f"{a}/{b}" if (a, b) == (c, d) else f"{a}/{b} (worst) to {c}/{d} (best)"
        return shown + (f" ({self.missing} not run)" if self.missing else "")


@dataclass(frozen=True)
class Verdict:
    """A claim checked on our results: our numbers beside the paper's, a status and why."""

    status: str  # HOLDS, FAILS, UNDECIDED or NOT_COMPARABLE
    ours: str
    paper: str
    reason: str


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, where the paper makes it, and the function that checks it on a `Results` table.

    ``text`` says what is checked, bar included; ``source`` is the paper's own words, short, with where they are
    (section, figure, table or abstract, and which version), or a paraphrase marked as one.
    """

    text: str
    check: Callable[["Results"], Verdict]
    source: str = ""


@dataclass(frozen=True)
class Study:
    """A reproduction study (see the module docstring)."""

    name: str
    title: str
    citation: str
    paper_dataset: str  # the paper's dataset; Fashion-MNIST stands in when it is not found locally
    claims: Sequence[Claim]
    metric: str  # the accuracy the claims and the report use: final, best or last5 (the paper's convention)
    # The dataset the grid is made for, found locally or not, where the paper's cannot run with it (a model or a
    # trigger sized for 28x28 images, a bound measured on it): e.g. "fashionmnist". None: the paper's when found.
    runs_on: str | None = None
    home: Path = Path(__file__).parent / "papers"  # the folder holding <name>.toml and <name>.md
    references: dict[str, Any] = field(default_factory=dict)
    # Our numbers beside the paper's, cell by cell: rows of one table (column -> text), published with the claims.
    comparison: Callable[["Results"], list[dict[str, str]]] | None = None

    def check(self, results: "Results") -> list[Verdict]:
        """Each claim checked on the result table, in order."""
        return [claim.check(results) for claim in self.claims]

    @property
    def beside(self) -> tuple[str, ...]:
        """The accuracies shown beside the study's own in its claims tables (`SHOWN` but the study's)."""
        return tuple(m for m in SHOWN if m != self.metric)

    def check_beside(self, results: "Results") -> list[dict[str, Verdict]]:
        """Each claim checked again on each accuracy of `beside`: {accuracy: verdict}, claim by claim."""
        again = {metric: self.check(results.under(metric)) for metric in self.beside}
        return [{metric: verdicts[i] for metric, verdicts in again.items()} for i in range(len(self.claims))]

    @property
    def grid_file(self) -> Path:
        return self.home / f"{self.name}.toml"

    @property
    def notes_file(self) -> Path:
        return self.home / f"{self.name}.md"


class Results:
    """The result table of a study: one row per group of seeds, looked up by its fields."""

    def __init__(self, summaries: Sequence[Summary], metric: str) -> None:
        self.summaries, self.metric = list(summaries), metric

    def under(self, metric: str) -> "Results":
        """The same table read with another accuracy (final, best or last5)."""
        return Results(self.summaries, metric)

    def rows(self, **where: Any) -> list[Summary]:
        """The groups matching every ``field=value`` (aggregator and attack by any spec of the same rule)."""
        where = {k: canonical(k, v) for k, v in where.items()}
        return [s for s in self.summaries if all(_field(s, k) == v for k, v in where.items())]

    def value(self, **where: Any) -> float:
        """The metric's mean over seeds of the one group matching ``where`` (NaN when none or several match)."""
        rows = self.rows(**where)
        return rows[0].mean[self.metric] if len(rows) == 1 else math.nan

    def estimate(self, metric: Quantity | None = None, of: str = "accuracy", **where: Any) -> Estimate:
        """Mean and 95% half-width over seeds of ``metric`` (default: the study's; a name, or a function of the
        [seeds, evaluations] curve giving one value a seed) for the one matching group (NaN otherwise).

        ``of``: the curve read, the clean ``accuracy``, or under a targeted attack its ``asr`` or
        ``robust_accuracy`` (NaN for a group that did not measure it).
        """
        metric, of = metric or self.metric, _quantity(of)
        if isinstance(metric, str) and of in QUANTITIES:
            rows = self.rows(**where)
            stats = rows[0].of(of) if len(rows) == 1 else None
            return Estimate(stats[0][metric], stats[1][metric]) if stats else Estimate(math.nan, math.nan)
        return Estimate.of(list(self.seed_values(metric, of, **where).values()))

    def seed_values(self, metric: Quantity | None = None, of: str = "accuracy", **where: Any) -> dict[int, float]:
        """{seed: value of ``metric``} on the ``of`` curve for the one group matching ``where`` ({} when none or
        several match, or when it did not measure that curve)."""
        rows, of = self.rows(**where), _quantity(of)
        curves = _curves(rows[0].group, of) if len(rows) == 1 else None
        if curves is None:
            return {}
        metric = metric or self.metric
        values = per_seed(curves)[metric] if isinstance(metric, str) else metric(curves)
        return {int(seed): float(v) for seed, v in zip(rows[0].group.seeds, values)}

    def combination(self, terms: Sequence[tuple[float, Mapping[str, Any]]], metric: Quantity | None = None,
                    of: str = "accuracy") -> Estimate:
        """The estimate of ``sum(coefficient * group)`` over ``terms`` of (coefficient, fields of one group), each
        read on its ``of`` curve.

        When every group ran the same seeds the sum is taken seed by seed and its interval is that of the
        per-seed sums (what the seeds share cancels out of it); otherwise the means add up and the half-widths
        in quadrature. NaN when a group is missing.
        """
        seeds = [self.seed_values(metric, of, **where) for _, where in terms]
        if not all(seeds):
            return Estimate(math.nan, math.nan)
        if all(s.keys() == seeds[0].keys() for s in seeds):
            return Estimate.of([sum(c * s[seed] for (c, _), s in zip(terms, seeds)) for seed in sorted(seeds[0])])
        parts = [(c, self.estimate(metric, of, **where)) for c, where in terms]
        return Estimate(sum(c * e.mean for c, e in parts), math.sqrt(sum((c * e.half) ** 2 for c, e in parts)))

    def difference(self, first: Mapping[str, Any], second: Mapping[str, Any],
                   metric: Quantity | None = None, of: str = "accuracy") -> Estimate:
        """``first - second`` on the ``of`` curve, seed by seed when both ran the same seeds (`combination`)."""
        return self.combination([(1.0, first), (-1.0, second)], metric, of)

    def asr_after(self, k: int, **where: Any) -> Estimate:
        """The ASR k steps after the targeted attack's last attacked step (k = 0: the evaluation right after it),
        mean and 95% half-width over the seeds of the one matching group; NaN when none matches, or its
        schedule did not stop before the run's end, or no evaluation fell k steps after it."""
        rows = self.rows(**where)
        after = rows[0].group.asr_after if len(rows) == 1 else None
        return Estimate.of(after[k]) if after and k in after else Estimate(math.nan, math.nan)

    def curve(self, of: str = "accuracy", **where: Any) -> tuple[list[int], list[float]]:
        """(evaluation steps, the ``of`` curve averaged over seeds) of the one matching group ([], [] otherwise)."""
        rows = self.rows(**where)
        curves = _curves(rows[0].group, of) if len(rows) == 1 else None
        if curves is None:
            return [], []
        return [int(s) for s in rows[0].group.steps], [float(a) for a in curves.mean(axis=0)]

    def values(self, field_name: str, **where: Any) -> list[Any]:
        """The distinct values of a field among the matching groups, sorted."""
        return sorted({_field(s, field_name) for s in self.rows(**where)}, key=repr)


def _quantity(of: str) -> str:
    """``of`` checked: one of the curves a summary or a decentralised group holds (`CURVES`)."""
    if of not in CURVES:
        raise ValueError(f"of={of!r}: expected one of {', '.join(CURVES)}")
    return of


def _curves(group: Group, of: str) -> np.ndarray | None:
    """The group's [seeds, evaluations] ``of`` curve; None where it did not measure it (an ASR without a
    targeted attack, the nodes' accuracies of a server's run)."""
    if _quantity(of) in NODE_ACCURACIES:
        return group.nodes[of] if group.nodes else None
    return group.accuracy if of == "accuracy" else getattr(group, of)


def _field(summary: Summary, name: str) -> Any:
    return summary.group.identity.get(name)


def canonical(name: str, value: Any) -> Any:
    """A spec (aggregator, attack, topology, privacy, ...) in the form run identities hold (`Plugin.identity`: the
    canonical form less its neutral parameters, and less the parameters added since at their default); other
    values as they are."""
    if name in PARTS and isinstance(value, str):
        return PARTS[name](value).identity
    return value
