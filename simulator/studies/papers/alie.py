"""Baruch, Baruch & Goldberg, NeurIPS 2019: a perturbation within the honest spread goes through the defences."""
from __future__ import annotations

from simulator.studies.catalogue import register
from simulator.studies.study import (FAILS, HOLDS, NOT_COMPARABLE, Claim, Estimate, Results, Study, Verdict, combine,
                                     decide)

AUTHORS = ("krum", "trmean", "bulyan")  # the defences of the authors' code (defences.py), besides no defence
OTHERS = ("median",)  # an existing defence their code does not run
LARGE = 0.10  # a defence is circumvented when the attack costs it 10 points or more
ABSTRACT = ("NeurIPS 2019 paper and arXiv 1902.06156, abstract: \"a novel non-omniscient attack on distributed "
            "learning that go undetected by all existing defenses\"")
PAPER = ("abstract: \"20% of corrupt workers are sufficient to degrade a CIFAR10 model accuracy by 50%\"; MNIST "
         "appears there only for backdoors")


def _loss(results: Results, rule: str) -> Estimate:
    """The accuracy the attack costs ``rule``: without attack minus under ALIE, seed by seed."""
    return results.difference({"aggregator": rule, "attack": "none"}, {"aggregator": rule, "attack": "alie"})


def _circumvented(results: Results, rules: tuple[str, ...], who: str) -> Verdict:
    losses = {rule: _loss(results, rule) for rule in rules}
    statuses = {rule: decide(loss, LARGE) for rule, loss in losses.items()}
    status = combine(statuses.values())
    if status == NOT_COMPARABLE:
        return Verdict(status, "missing runs", PAPER, f"the runs of {who} with and without the attack are not all there")
    average = _loss(results, "average")
    ours = "; ".join(f"{rule} {loss.text()}" for rule, loss in losses.items())
    named = {s: ", ".join(r for r, x in statuses.items() if x == s) for s in set(statuses.values())}
    reason = {HOLDS: f"each of {who} loses 10 points or more, interval included",
              FAILS: f"{named.get(FAILS)} loses less than 10 points beyond the interval"}.get(
        status, f"the 95% interval of the loss of {named.get(status)} reaches 10 points")
    return Verdict(status, f"accuracy lost to ALIE, in points: {ours} (the average, no defence: {average.text()})",
                   PAPER, reason)


def defences_are_circumvented(results: Results) -> Verdict:
    return _circumvented(results, AUTHORS, "the authors' defences")


def the_median_too(results: Results) -> Verdict:
    return _circumvented(results, OTHERS, "the median")


STUDY = register(Study(
    name="alie",
    title="A Little Is Enough: Circumventing Defenses For Distributed Learning",
    citation="Baruch, Baruch & Goldberg, NeurIPS 2019",
    paper_dataset="mnist",
    metric="best",
    claims=[
        Claim("ALIE costs each of the authors' defences, krum, trmean and bulyan, 10 points or more of its "
              "attack-free accuracy (all three must)", defences_are_circumvented,
              f"{ABSTRACT}. The defences of the authors' code (defences.py) are Krum, the trimmed mean and Bulyan."),
        Claim("ALIE costs the coordinate-wise median 10 points or more too (a defence the authors did not run)",
              the_median_too,
              f"{ABSTRACT}. The median is an existing defence, but not one of the authors' code (defences.py)."),
    ],
))
