"""Baruch, Baruch & Goldberg, NeurIPS 2019: a perturbation within the honest spread defeats the robust rules."""
from __future__ import annotations

import math

from simulator.studies.catalogue import register
from simulator.studies.study import FAILS, HOLDS, NOT_COMPARABLE, Claim, Results, Study, Verdict

RULES = ("krum", "trmean", "bulyan", "median")
LARGE, MARGIN = 0.10, 0.05  # a rule loses 10 points or more, and 5 points more than the average loses


def alie_defeats_the_rules(results: Results) -> Verdict:
    free = {rule: results.value(aggregator=rule, attack="none") for rule in ("average", *RULES)}
    hit = {rule: results.value(aggregator=rule, attack="alie") for rule in ("average", *RULES)}
    present = [r for r in RULES if not (math.isnan(free[r]) or math.isnan(hit[r]))]
    if math.isnan(free["average"]) or math.isnan(hit["average"]) or not present:
        return Verdict(NOT_COMPARABLE, "missing runs", "", "the average's or the rules' runs are missing")
    average_drop = free["average"] - hit["average"]
    drops = {r: free[r] - hit[r] for r in present}
    defeated = [r for r, d in drops.items() if d >= max(LARGE, average_drop + MARGIN)]
    holds = len(defeated) >= math.ceil(3 * len(present) / 4)
    ours = ", ".join(f"{r} -{100 * d:.1f}" for r, d in drops.items())
    return Verdict(
        HOLDS if holds else FAILS,
        f"top accuracy lost to ALIE (points): {ours}; average -{100 * average_drop:.1f}",
        "up to 50% of the accuracy on MNIST and CIFAR-10 with under 25% Byzantine workers (abstract)",
        f"{len(defeated)} of {len(present)} rules lose 10+ points and 5+ points more than the average" if holds else
        f"only {len(defeated)} of {len(present)} rules lose 10 points and 5 points more than the average does")


STUDY = register(Study(
    name="alie",
    title="A Little Is Enough: Circumventing Defenses For Distributed Learning",
    citation="Baruch, Baruch & Goldberg, NeurIPS 2019",
    paper_dataset="mnist",
    metric="best",
    claims=[Claim("a perturbation within the honest spread costs krum, trmean, bulyan and median a large part of "
                  "their accuracy, more than it costs the plain average", alie_defeats_the_rules)],
))
