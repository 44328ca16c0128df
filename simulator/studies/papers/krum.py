"""Blanchard, El Mhamdi, Guerraoui & Stainer, NeurIPS 2017: Gaussian Byzantine workers leave Krum as it is without
them and break averaging; Krum pays a cost against averaging; Multi-Krum is faster than Krum."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from simulator.studies.catalogue import register
from simulator.studies.study import (FAILS, HOLDS, NOT_COMPARABLE, UNDECIDED, Claim, Estimate, Results, Study, Verdict,
                                     combine, decide, missing, within)

ATTACK = "gaussian(std=200)"
CHANCE, CLOSE = 0.20, 0.05  # "does not converge": at most 20% accuracy; "alike": within 5 points either way
WHERE = ("Paraphrase (the text could not be retrieved to quote; the study's notes say more) of NeurIPS 2017, "
         "Section 5")


def _attacked(results: Results) -> list[int]:
    return [f for f in results.values("nb_real_byz", attack=ATTACK) if f > 0]


def _free(rule: str) -> dict:
    return {"aggregator": rule, "attack": "none"}


def _hit(rule: str, f: int) -> dict:
    return {"aggregator": rule, "attack": ATTACK, "nb_real_byz": f}


def _early(accuracy: np.ndarray) -> np.ndarray:
    """Each seed's mean accuracy over the first half of the evaluations: higher means faster convergence."""
    return accuracy[:, :max(1, accuracy.shape[1] // 2)].mean(axis=1)


def _per_f(results: Results, measure: Callable[[int], Estimate], rule: Callable[[Estimate], str]
           ) -> tuple[dict[int, Estimate], dict[int, str], str]:
    """The measured quantity for each attacked f, its status under the claim's rule, and the claim's status."""
    fs = _attacked(results)
    estimates = {f: measure(f) for f in fs}
    statuses = {f: rule(e) for f, e in estimates.items()}
    return estimates, statuses, combine(statuses.values()) if fs else NOT_COMPARABLE


def _listed(estimates: Mapping[int, Estimate], unit: str = "") -> str:
    return ", ".join(f"f={f}: {e.text()}{unit}" for f, e in estimates.items())


def _reason(statuses: Mapping[int, str], holds: str, fails: str, undecided: str) -> str:
    """One sentence naming the f's that decide the claim's status."""
    status = combine(statuses.values())
    fs = ", ".join(str(f) for f, s in statuses.items() if s == status)
    return {HOLDS: holds, FAILS: f"{fails} (f = {fs})", UNDECIDED: f"{undecided} (f = {fs})"}.get(status, "")


def krum_is_unmoved(results: Results) -> Verdict:
    shifts, statuses, status = _per_f(results, lambda f: results.difference(_hit("krum", f), _free("krum")),
                                      lambda e: within(e, CLOSE))
    if status == NOT_COMPARABLE:
        return missing("krum with and without attack")
    return Verdict(
        status,
        f"krum under attack minus krum without, in points: {_listed(shifts)} (krum without attack: "
        f"{results.estimate(**_free('krum')).text()}%)",
        "with 33% Gaussian workers Krum converges as it does with none",
        _reason(statuses, "krum under attack is within 5 points of krum without attack under every f, interval "
                          "included",
                "krum under attack is more than 5 points from krum without attack beyond the interval",
                "the 95% interval of the difference reaches past 5 points"))


def averaging_fails(results: Results) -> Verdict:
    ends, statuses, status = _per_f(results, lambda f: results.estimate(**_hit("average", f)),
                                    lambda e: decide(e, CHANCE, above=False))
    if status == NOT_COMPARABLE:
        return missing("the average")
    return Verdict(
        status,
        f"the average under attack: {_listed(ends, '%')} (without attack: "
        f"{results.estimate(**_free('average')).text()}%)",
        "averaging does not converge with 33% Gaussian workers",
        _reason(statuses, "the average ends at 20% accuracy or below under every f, interval included",
                "the average keeps more than 20% accuracy beyond the interval",
                "the 95% interval of the average's accuracy reaches 20%"))


def cost_of_resilience(results: Results) -> Verdict:
    gaps, statuses, status = _per_f(results, lambda f: results.difference(_free("average"), _hit("krum", f)),
                                    lambda e: decide(e, CLOSE, above=False))
    if status == NOT_COMPARABLE:
        return missing("krum under attack, or the average without")
    return Verdict(
        status,
        f"the attack-free average minus krum under attack, in points: {_listed(gaps)}",
        "Krum is slower than averaging without Byzantine workers, a cost that shrinks as the mini-batch grows "
        "(ours: batch 16)",
        _reason(statuses, "krum under attack ends within 5 points of the attack-free average under every f, "
                          "interval included",
                "krum under attack ends more than 5 points below the attack-free average beyond the interval",
                "the 95% interval of the gap reaches 5 points"))


def multikrum_is_faster(results: Results) -> Verdict:
    leads, statuses, status = _per_f(
        results, lambda f: results.difference(_hit("multikrum", f), _hit("krum", f), metric=_early),
        lambda e: decide(e, 0.0))
    if status == NOT_COMPARABLE:
        return missing("krum or multikrum under attack")
    return Verdict(
        status,
        f"multikrum minus krum, mean accuracy over the first half of training, in points: {_listed(leads)}",
        "Multi-Krum (m = n - f) converges faster than Krum under 33% Gaussian workers",
        _reason(statuses, "multikrum is ahead early under every f, interval included",
                "krum is ahead early beyond the interval", "the 95% interval of multikrum's lead reaches 0"))


def multikrum_tracks_the_average(results: Results) -> Verdict:
    shifts, statuses, status = _per_f(results, lambda f: results.difference(_hit("multikrum", f), _free("average")),
                                      lambda e: within(e, CLOSE))
    if status == NOT_COMPARABLE:
        return missing("multikrum under attack, or the average without")
    return Verdict(
        status,
        f"multikrum under attack minus the attack-free average, in points: {_listed(shifts)}",
        "Multi-Krum under 33% Gaussian workers converges about as fast as averaging without Byzantine workers",
        _reason(statuses, "multikrum under attack is within 5 points of the attack-free average under every f, "
                          "interval included",
                "multikrum under attack is more than 5 points from the attack-free average beyond the interval",
                "the 95% interval of the difference reaches past 5 points"))


STUDY = register(Study(
    name="krum",
    title="Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent",
    citation="Blanchard, El Mhamdi, Guerraoui & Stainer, NeurIPS 2017",
    paper_dataset="mnist",
    metric="final",
    claims=[
        Claim("krum under Gaussian Byzantine workers ends within 5 points of krum without attack", krum_is_unmoved,
              f"{WHERE}, \"Resilience to Byzantine processes\" (Figure 4): with 33% of the workers sending "
              "Gaussian vectors, Krum's error curve is the one it has with no Byzantine worker, while averaging "
              "does not converge."),
        Claim("averaging under Gaussian Byzantine workers ends at 20% accuracy or below", averaging_fails,
              f"{WHERE}, Figure 4: averaging does not converge with 33% of the workers sending Gaussian vectors."),
        Claim("the cost of resilience: krum under attack ends within 5 points of the attack-free average "
              "(byzsim's bar)", cost_of_resilience,
              f"{WHERE}, \"Cost of resilience\" (Figures 4 and 5): with no Byzantine worker Krum converges more "
              "slowly than averaging, and the gap shrinks as the mini-batch grows."),
        Claim("multikrum converges faster than krum under attack", multikrum_is_faster,
              f"{WHERE}, \"Multi-Krum\" (Figure 6): Multi-Krum with m = n - f, under 33% Gaussian workers, "
              "converges faster than Krum, about as fast as averaging with no Byzantine worker."),
        Claim("multikrum under attack ends within 5 points of the attack-free average", multikrum_tracks_the_average,
              f"{WHERE}, \"Multi-Krum\" (Figure 6), as above."),
    ],
))
