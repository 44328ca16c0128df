"""Blanchard et al., NeurIPS 2017: averaging fails under Byzantine workers, Krum does not, Multi-Krum is faster."""
from __future__ import annotations

import math

from simulator.studies.catalogue import register
from simulator.studies.study import FAILS, HOLDS, NOT_COMPARABLE, Claim, Results, Study, Verdict

ATTACK = "gaussian(std=200)"
CHANCE, CLOSE = 0.20, 0.05  # "fails": at most 20% accuracy; "tracks": within 5 points


def _attacked(results: Results) -> list[int]:
    return [f for f in results.values("nb_real_byz", attack=ATTACK) if f > 0]


def averaging_fails(results: Results) -> Verdict:
    fs = _attacked(results)
    free = results.value(aggregator="average", attack="none")
    final = {f: results.value(aggregator="average", attack=ATTACK, nb_real_byz=f) for f in fs}
    if not fs or math.isnan(free) or any(math.isnan(v) for v in final.values()):
        return Verdict(NOT_COMPARABLE, "missing runs", "", "the average's runs are missing")
    holds = all(v <= CHANCE for v in final.values())
    return Verdict(HOLDS if holds else FAILS,
                   ", ".join(f"f={f}: {100 * v:.1f}%" for f, v in final.items()) + f" (no attack {100 * free:.1f}%)",
                   "averaging does not converge with one Gaussian worker or more",
                   "the average ends near chance under every f" if holds else
                   "the average keeps more than 20% accuracy under some f")


def krum_tracks_the_average(results: Results) -> Verdict:
    fs = _attacked(results)
    free = results.value(aggregator="average", attack="none")
    krum = {f: results.value(aggregator="krum", attack=ATTACK, nb_real_byz=f) for f in fs}
    if not fs or math.isnan(free) or any(math.isnan(v) for v in krum.values()):
        return Verdict(NOT_COMPARABLE, "missing runs", "", "krum's runs are missing")
    holds = all(free - v <= CLOSE for v in krum.values())
    return Verdict(HOLDS if holds else FAILS,
                   ", ".join(f"f={f}: {100 * v:.1f}%" for f, v in krum.items()) + f" vs {100 * free:.1f}% "
                   "for the average without attack",
                   "Krum converges under Gaussian workers, at a small cost in error against averaging",
                   "krum stays within 5 points of the attack-free average under every f" if holds else
                   "krum falls more than 5 points below the attack-free average under some f")


def _early(results: Results, rule: str, f: int) -> float:
    """Mean accuracy over the first half of the evaluations: higher means faster convergence."""
    _, curve = results.curve(aggregator=rule, attack=ATTACK, nb_real_byz=f)
    half = curve[:max(1, len(curve) // 2)]
    return sum(half) / len(half) if half else math.nan


def multikrum_is_faster(results: Results) -> Verdict:
    fs = _attacked(results)
    early = {f: (_early(results, "multikrum", f), _early(results, "krum", f)) for f in fs}
    if not fs or any(math.isnan(v) for pair in early.values() for v in pair):
        return Verdict(NOT_COMPARABLE, "missing runs", "", "krum's or multikrum's runs are missing")
    holds = all(m > k for m, k in early.values())
    return Verdict(HOLDS if holds else FAILS,
                   "mean accuracy over the first half of training, multikrum vs krum: " +
                   ", ".join(f"f={f}: {100 * m:.1f}% vs {100 * k:.1f}%" for f, (m, k) in early.items()),
                   "Multi-Krum converges faster than Krum (it averages m vectors: less variance)",
                   "multikrum is ahead early under every f" if holds else "krum is ahead early under some f")


STUDY = register(Study(
    name="krum",
    title="Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent",
    citation="Blanchard, El Mhamdi, Guerraoui & Stainer, NeurIPS 2017",
    paper_dataset="mnist",
    metric="final",
    claims=[
        Claim("averaging fails under Gaussian Byzantine workers", averaging_fails),
        Claim("krum tracks the attack-free average", krum_tracks_the_average),
        Claim("multikrum converges faster than krum", multikrum_is_faster),
    ],
))
