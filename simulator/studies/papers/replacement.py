"""Bagdasaryan et al., AISTATS 2020: one attacker selected in one round replaces the global model with its backdoored
one when it scales its update by n / eta; the same shot unscaled is averaged away.

Every claim reads the runs around the single shot at round `SHOT`: the ASR at the evaluation right after it
(`Results.asr_after` with k = 0) and `LATER` rounds after it, and the clean accuracy right after it against the
attack-free run, seed by seed.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.studies.catalogue import register
from simulator.studies.study import (FAILS, HOLDS, Claim, Results, Study, Verdict, combine, decide, missing)

SHOT, LATER = 100, 10  # the attacked round (the grid's begin); the rounds after it at which the backdoor must last
SCALED = f"model-replacement(begin={SHOT},end={SHOT + 1})"
UNSCALED = f"badnets(begin={SHOT},end={SHOT + 1})"  # the same poisoned training, sent as it is
FREE = "none"
HIGH, HALF, LOW, GAP, KEPT = 0.90, 0.50, 0.20, 0.50, 0.03  # the bars, each said in its claim

ARXIV = "arXiv:1807.00459, abstract"
AISTATS = "AISTATS 2020 (PMLR 108:2938-2948), abstract"
PAPER_AT_ONCE = "100% backdoor accuracy right after the single round (CIFAR-10 and word prediction)"


def _after_shot(results: Results, attack: str) -> Callable[[np.ndarray], np.ndarray]:
    """Each seed's value at the evaluation right after the shot (step SHOT + 1), a function of the curves."""
    rows = results.rows(attack=attack)
    steps = rows[0].group.steps if len(rows) == 1 else np.array([], dtype=int)
    at = np.flatnonzero(steps == SHOT + 1)
    return lambda curves: curves[:, at[0]] if at.size else np.full(curves.shape[0], np.nan)


def replaced_at_once(results: Results) -> Verdict:
    asr = results.asr_after(0, attack=SCALED)
    if np.isnan(asr.mean):
        return missing("the scaled shot")
    status = decide(asr, HIGH)
    return Verdict(status, f"ASR at the evaluation right after the scaled shot: {asr.text()}%", PAPER_AT_ONCE,
                   {HOLDS: f"above {HIGH:.0%} beyond its 95% interval",
                    FAILS: f"below {HIGH:.0%} beyond its 95% interval"}.get(status,
                                                                           f"the 95% interval reaches {HIGH:.0%}"))


def lasts(results: Results) -> Verdict:
    asr, first = results.asr_after(LATER, attack=SCALED), results.asr_after(0, attack=SCALED)
    if np.isnan(asr.mean):
        return missing(f"the scaled shot, evaluated {LATER} rounds after it,")
    status = decide(asr, HALF)
    return Verdict(status, f"ASR {LATER} rounds after the scaled shot: {asr.text()}% (right after it: "
                           f"{first.text()}%)",
                   "the backdoor stays in the global model for many rounds after the shot (paraphrase)",
                   {HOLDS: f"above one half beyond its 95% interval, {LATER} rounds on",
                    FAILS: f"below one half beyond its 95% interval, {LATER} rounds on"}.get(
                       status, "the 95% interval reaches one half"))


def unscaled_stays_low(results: Results) -> Verdict:
    plain = results.asr_after(0, attack=UNSCALED)
    gap = results.difference({"attack": SCALED}, {"attack": UNSCALED}, _after_shot(results, SCALED), of="asr")
    if np.isnan(plain.mean) or np.isnan(gap.mean):
        return missing("the scaled or the unscaled shot")
    low, apart = decide(plain, LOW, above=False), decide(gap, GAP)
    status = combine([low, apart])
    reason = {HOLDS: f"the unscaled shot stays below {LOW:.0%} and the scaled one is {GAP * 100:g} points or more "
                     "above it, each beyond its 95% interval",
              FAILS: (f"the unscaled shot reaches {LOW:.0%} or more" if low == FAILS else
                      f"the scaled shot is less than {GAP * 100:g} points above the unscaled one")
                     + " beyond the interval"}
    return Verdict(status, f"ASR right after the unscaled shot: {plain.text()}%; the scaled shot minus the unscaled, "
                           f"seed by seed: {gap.text()} points",
                   "model replacement \"greatly outperforms training-data poisoning\"",
                   reason.get(status, "a 95% interval reaches its bar"))


def clean_accuracy_kept(results: Results) -> Verdict:
    loss = results.difference({"attack": FREE}, {"attack": SCALED}, _after_shot(results, SCALED))
    end = results.difference({"attack": FREE}, {"attack": SCALED})
    if np.isnan(loss.mean):
        return missing("the scaled shot or the attack-free run")
    status = decide(loss, KEPT, above=False)
    free = results.estimate(_after_shot(results, FREE), attack=FREE)
    return Verdict(status, f"clean accuracy lost to the scaled shot, right after it: {loss.text()} points (at the "
                           f"run's end: {end.text()}); attack-free right after the shot: {free.text()}%",
                   "the replaced model keeps the main task's accuracy (paraphrase)",
                   {HOLDS: f"less than {KEPT * 100:g} points lost beyond the 95% interval",
                    FAILS: f"{KEPT * 100:g} points or more lost beyond the 95% interval"}.get(
                       status, f"the 95% interval reaches {KEPT * 100:g} points"))


STUDY = register(Study(
    name="replacement",
    title="How To Backdoor Federated Learning",
    citation="Bagdasaryan, Veit, Hua, Estrin & Shmatikov, AISTATS 2020",
    paper_dataset="cifar10",
    runs_on="fashionmnist",
    metric="final",
    claims=[
        Claim(f"one attacker's scaled single shot (gamma = n / eta = 10) puts the ASR at {HIGH:.0%} or more at the "
              "evaluation right after it", replaced_at_once,
              f"{ARXIV}: \"An attacker selected in a single round of federated learning can cause the global model to "
              "immediately reach 100% accuracy on the backdoor task.\" The 90% bar is byzsim's."),
        Claim(f"the backdoor lasts: the ASR is still above one half {LATER} rounds after the scaled shot", lasts,
              "Paraphrase (the paper's text beyond its abstract could not be retrieved here; replacement.md): the "
              "paper's single-shot experiment (Section 5) follows the backdoor accuracy over the rounds after the "
              "attack, in which the benign participants' updates wear it down only slowly. k = 10 rounds is "
              "byzsim's choice."),
        Claim(f"the same shot unscaled (BadNets' poisoned update sent as it is) leaves the ASR below {LOW:.0%} right "
              f"after it, and the scaled shot's ASR is {GAP * 100:g} points or more above it", unscaled_stays_low,
              f"{AISTATS}: \"We evaluate model replacement under different assumptions for the standard "
              "federated-learning tasks and show that it greatly outperforms training-data poisoning.\""),
        Claim(f"the scaled shot costs less than {KEPT * 100:g} points of clean accuracy at the evaluation right "
              "after it, against the attack-free run", clean_accuracy_kept,
              "Paraphrase of the paper's Section 4 (not retrieved here): the attacker trains its model to do well on "
              "both the main and the backdoor task, so the global model it replaces keeps its main-task accuracy."),
    ],
))
