"""Allouah et al., AISTATS 2023: nearest-neighbour mixing (NNM) in front of a robust rule fixes it under heterogeneity.

Every claim reads each rule's worst case over the attacks (the attack at which its mean accuracy is lowest), rule
by rule: a difference of two worst cases is taken seed by seed (`Results.difference`), decided against its bar
with `decide` or `within` (undecided when the bar lies in its 95% interval), and the rules that ran are combined
with `combine` (every rule must hold).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from simulator.studies.catalogue import register
from simulator.studies.study import (NOT_COMPARABLE, Claim, Estimate, Results, Study, Verdict, combine, decide,
                                     reason, within)

RULES = {"CWTM": "trmean", "CWMed": "median", "Krum": "krum", "GM": "geomed"}
ATTACKS = {"ALIE": "alie", "FOE": "ipm", "SF": "signflip", "LF": "labelflip", "mimic": "mimic(heuristic=variance)"}
SORTED, IID = "extreme", "iid"
LOST, SMALL = 0.10, 0.03  # "loses": 10 points below the attack-free average; "small": within 3 points either way

ABSTRACT = "Allouah et al., AISTATS 2023 (PMLR 206:1232-1300; arXiv:2302.01772), abstract"
NO_NUMBERS = "no number: the paper's experimental section could not be read here (mixing.md)"

Where = dict[str, Any]


def alone(rule: str) -> str:
    return rule


def mixed(rule: str) -> str:
    return f"nnm>{rule}"


def bucketed(rule: str) -> str:
    return f"bucketing(s=2)>{rule}"


def worst(results: Results, aggregator: str, heterogeneity: str) -> tuple[str, Where | None]:
    """(attack name, fields of its group) of the aggregator's lowest mean over the attacks; ("", None) if none ran."""
    cells = {name: {"aggregator": aggregator, "attack": spec, "heterogeneity": heterogeneity}
             for name, spec in ATTACKS.items()}
    means = {name: results.estimate(**where).mean for name, where in cells.items()}
    ran = [name for name, mean in means.items() if not math.isnan(mean)]
    if not ran:
        return "", None
    name = min(ran, key=means.__getitem__)
    return name, cells[name]


def attack_free(heterogeneity: str) -> Where:
    """The fields of the attack-free reference: the honest workers alone, averaged."""
    return {"aggregator": "average", "attack": "none", "heterogeneity": heterogeneity}


def _case(results: Results, label: str, attack: str, where: Where) -> str:
    return f"{label} {results.estimate(**where).text()} under {attack}"


def _gains(results: Results, heterogeneity: str, top: Callable[[str], str], top_label: str,
           bottom: Callable[[str], str], bottom_label: str) -> tuple[dict[str, Estimate], str]:
    """Per rule that ran both ways, worst case of ``top(rule)`` minus worst case of ``bottom(rule)`` (seed by seed),
    and the text: both worst cases and the difference."""
    gains, parts = {}, []
    for name, rule in RULES.items():
        (up, up_where), (down, down_where) = worst(results, top(rule), heterogeneity), worst(results, bottom(rule),
                                                                                             heterogeneity)
        if up_where is None or down_where is None:
            continue
        gains[name] = results.difference(up_where, down_where)
        parts.append(f"{name}: {_case(results, bottom_label, down, down_where)}, "
                     f"{_case(results, top_label, up, up_where)}, gain {gains[name].text()}")
    return gains, "; ".join(parts)


def heterogeneity_breaks_the_rules(results: Results) -> Verdict:
    free = attack_free(SORTED)
    losses, parts = {}, []
    for name, rule in RULES.items():
        attack, where = worst(results, rule, SORTED)
        if where is not None:
            losses[name] = results.difference(free, where)
            parts.append(f"{name} {results.estimate(**where).text()} under {attack}, loss {losses[name].text()}")
    if math.isnan(results.estimate(**free).mean) or not losses:
        return Verdict(NOT_COMPARABLE, "missing runs", NO_NUMBERS,
                       "the attack-free average or the rules alone did not run on label-sorted data")
    status = combine([decide(loss, LOST) for loss in losses.values()])
    ours = f"attack-free {results.estimate(**free).text()}; " + "; ".join(parts)
    return Verdict(status, ours, NO_NUMBERS, reason(
        status, f"every rule's worst case is more than {100 * LOST:g} points below the attack-free average",
        f"some rule's worst case is less than {100 * LOST:g} points below the attack-free average",
        f"some rule's loss is within its 95% interval of {100 * LOST:g} points"))


def _ahead(results: Results, other: Callable[[str], str], other_label: str, missing: str,
           texts: tuple[str, str, str]) -> Verdict:
    """NNM in front of each rule against ``other`` (the rule alone, or bucketing in front of it), label-sorted data:
    holds when NNM's worst case is above for every rule beyond its interval (``texts``: why it holds, fails, is open)."""
    gains, ours = _gains(results, SORTED, mixed, "with NNM", other, other_label)
    if not gains:
        return Verdict(NOT_COMPARABLE, "missing runs", NO_NUMBERS, missing)
    status = combine([decide(gain, 0.0) for gain in gains.values()])
    return Verdict(status, ours, NO_NUMBERS, reason(status, *texts))


def nnm_recovers(results: Results) -> Verdict:
    return _ahead(results, alone, "alone", "no rule ran both alone and with NNM on label-sorted data",
                  ("NNM raises every rule's worst case beyond its 95% interval",
                   "NNM lowers some rule's worst case beyond its 95% interval",
                   "some rule's worst-case gain with NNM is within its 95% interval of zero"))


def nnm_beats_bucketing(results: Results) -> Verdict:
    return _ahead(results, bucketed, "with bucketing",
                  "no rule ran both with bucketing and with NNM on label-sorted data",
                  ("NNM's worst case is above bucketing's for every rule, beyond its 95% interval",
                   "bucketing's worst case is above NNM's for some rule, beyond its 95% interval",
                   "for some rule NNM and bucketing are within the 95% interval of each other"))


def nnm_changes_little_on_iid(results: Results) -> Verdict:
    gains, ours = _gains(results, IID, mixed, "with NNM", alone, "alone")
    if not gains:
        return Verdict(NOT_COMPARABLE, "missing runs", NO_NUMBERS, "no rule ran both alone and with NNM on iid data")
    status = combine([within(gain, SMALL) for gain in gains.values()])
    return Verdict(status, ours, NO_NUMBERS, reason(
        status, f"with NNM every rule's iid worst case moves by less than {100 * SMALL:g} points, beyond its interval",
        f"with NNM some rule's iid worst case moves by more than {100 * SMALL:g} points, beyond its interval",
        f"some rule's iid change with NNM is within its 95% interval of {100 * SMALL:g} points"))


STUDY = register(Study(
    name="mixing",
    title="Fixing by Mixing: A Recipe for Optimal Byzantine ML under Heterogeneity",
    citation="Allouah, Farhadkhani, Guerraoui, Gupta, Pinot & Stephan, AISTATS 2023",
    paper_dataset="mnist",
    metric="best",
    claims=[
        Claim("label-sorted heterogeneity costs every rule alone (CWTM, CWMed, Krum, GM) more than 10 points of its "
              "worst case over the attacks, against the attack-free average", heterogeneity_breaks_the_rules,
              f"{ABSTRACT}: \"Data heterogeneity makes Byzantine ML considerably more challenging, since a Byzantine "
              "machine can hardly be distinguished from a non-Byzantine outlier.\""),
        Claim("NNM in front of each rule raises its worst case over the attacks under label-sorted heterogeneity",
              nnm_recovers,
              f"{ABSTRACT}: NNM \"boosts any standard robust distributed gradient descent variant to yield optimal "
              "Byzantine resilience under heterogeneity\"; \"We obtain empirical results that significantly "
              "outperform state-of-the-art Byzantine ML solutions.\""),
        Claim("NNM in front of each rule (CWTM, CWMed, GM) ends above bucketing in front of it, worst case over the "
              "attacks, under label-sorted heterogeneity", nnm_beats_bucketing,
              f"{ABSTRACT}: the few solutions proposed for heterogeneity \"provide suboptimal probabilistic "
              "guarantees and fare poorly in practice\" (paraphrase: that bucketing is among them is our reading)."),
        Claim("on iid data NNM moves each rule's worst case over the attacks by less than 3 points either way",
              nnm_changes_little_on_iid,
              f"Paraphrase of {ABSTRACT}: NNM adapts \"existing solutions for (homogeneous) Byzantine ML\" to the "
              "heterogeneous setting; that it changes little where the data are homogeneous is our reading, not a "
              "sentence of the paper."),
    ],
))
