"""Guerraoui, Gupta, Pinot, Rouault & Stephan, PODC 2021: differential privacy and Byzantine resilience, each
workable alone, do not add up when combined.

The grid is the authors' reproduce.py (guerraoui2021.toml): the attack-free average against MDA under ALIE and
IPM, without noise and at a per-step epsilon of 0.1, 0.2 and 0.5, for batch sizes 10 to 500. The paper's figures
could not be read here, so the claims check its abstract's statements and what its experiment is built to show,
with byzsim's bars. Each reads the final accuracy with its 95% interval over seeds; the groups share their seeds,
so every difference is taken seed by seed.
"""
from __future__ import annotations

import math

from simulator.studies.catalogue import register
from simulator.studies.study import (FAILS, HOLDS, NOT_COMPARABLE, Claim, Results, Study, Tally, Verdict,
                                     decide, missing)

BATCHES = (10, 25, 50, 100, 250, 500)
NOISE = {0.1: 105.976, 0.2: 52.988, 0.5: 21.195}  # per-step epsilon -> dpsgd's sigma (guerraoui2021.toml)
PRIVACY = {eps: f"dpsgd(clip=0.01,sigma={sigma},delta=1e-6)" for eps, sigma in NOISE.items()}
ATTACKS = {"ALIE": "alie(z=1.5)", "IPM": "ipm(epsilon=1.1)"}
CLOSE, APART, GAINS, SHARE = 0.05, 0.10, 0.10, 0.5  # the bars, each said in its claim

ABSTRACT = "arXiv:2102.08166, abstract"
NOT_READ = "no number: the paper's figures could not be read here (guerraoui2021.md)"


def _free(batch: int, eps: float | None) -> dict:
    """The attack-free average of 11 honest workers, without noise (eps None; no privacy is no field in a run's
    identity) or at that epsilon."""
    return {"aggregator": "average", "attack": "none", "batch_size": batch, **_privacy(eps)}


def _mda(batch: int, eps: float | None, attack: str) -> dict:
    return {"aggregator": "mda", "attack": ATTACKS[attack], "batch_size": batch, **_privacy(eps)}


def _privacy(eps: float | None) -> dict:
    return {"privacy": None, "clip": 0.01} if eps is None else {"privacy": PRIVACY[eps], "clip": None}


def _tallied(tally: Tally, share: float, ours: str, condition: str) -> Verdict:
    status = tally.decide(share)
    word = {HOLDS: "at least", FAILS: "fewer than"}.get(status, "the undecided cells leave open whether")
    return Verdict(status, f"{ours}: {tally.text()}", NOT_READ,
                   f"{word} {share:.0%} of the cells {condition}" if status != NOT_COMPARABLE else "missing runs")


def resilience_alone(results: Results) -> Verdict:
    cases = {(b, a): results.difference(_free(b, None), _mda(b, None, a)) for b in BATCHES for a in ATTACKS}
    if any(math.isnan(c.mean) for c in cases.values()):
        return missing("a noiseless cell", NOT_READ)
    statuses = {key: decide(loss, CLOSE, above=False) for key, loss in cases.items()}
    worst = max(cases, key=lambda key: cases[key].mean)
    tally = Tally.count(statuses.values())
    verdict = _tallied(tally, 1.0, f"noiseless cells (batch x attack) where MDA loses less than {CLOSE * 100:g} "
                                   "points", f"keep MDA within {CLOSE * 100:g} points")
    return Verdict(verdict.status, f"{verdict.ours}; the largest loss, batch {worst[0]} under {worst[1]}: "
                                   f"{cases[worst].text()} points", NOT_READ, verdict.reason)


def privacy_alone(results: Results) -> Verdict:
    top = BATCHES[-1]
    losses = {eps: results.difference(_free(top, None), _free(top, eps)) for eps in NOISE}
    if any(math.isnan(loss.mean) for loss in losses.values()):
        return missing("an attack-free cell at batch 500", NOT_READ)
    tally = Tally.count(decide(loss, CLOSE, above=False) for loss in losses.values())
    verdict = _tallied(tally, 1.0, f"epsilons at which the noisy average at batch {top} loses less than "
                                   f"{CLOSE * 100:g} points", f"keep it within {CLOSE * 100:g} points")
    shown = "; ".join(f"epsilon {eps:g}: {loss.text()}" for eps, loss in losses.items())
    return Verdict(verdict.status, f"{verdict.ours} ({shown} points)", NOT_READ, verdict.reason)


def do_not_add_up(results: Results) -> Verdict:
    """The combination costs more than the sum of its parts: MDA's loss to the attack-free average with the noise,
    minus its loss without, is the cost beyond DP's and the attack's added (seed by seed, in each noisy cell)."""
    beyond = {(b, eps, a): results.combination([(1.0, _free(b, eps)), (-1.0, _mda(b, eps, a)),
                                                (-1.0, _free(b, None)), (1.0, _mda(b, None, a))])
              for b in BATCHES for eps in NOISE for a in ATTACKS}
    verdict = _tallied(Tally.count(decide(x, APART) for x in beyond.values()), SHARE,
                       f"noisy cells (batch x epsilon x attack) where the combination costs {APART * 100:g} points "
                       "or more beyond the sum of DP's cost and the attack's", "show it")
    per_attack = "; ".join(
        f"{a}: {Tally.count(decide(x, APART) for (_, _, attack), x in beyond.items() if attack == a).text()}"
        for a in ATTACKS)
    return Verdict(verdict.status, f"{verdict.ours} ({per_attack})", NOT_READ, verdict.reason)


def larger_batches_help(results: Results) -> Verdict:
    gains = {(eps, a): results.difference(_mda(BATCHES[-1], eps, a), _mda(BATCHES[0], eps, a))
             for eps in NOISE for a in ATTACKS}
    if any(math.isnan(g.mean) for g in gains.values()):
        return missing("a noisy MDA cell at batch 10 or 500", NOT_READ)
    verdict = _tallied(Tally.count(decide(g, GAINS) for g in gains.values()), 1.0,
                       f"noisy settings (epsilon x attack) where MDA at batch {BATCHES[-1]} ends {GAINS * 100:g} "
                       f"points or more above batch {BATCHES[0]}", f"gain {GAINS * 100:g} points")
    shown = "; ".join(f"epsilon {eps:g} {a} {g.text()}" for (eps, a), g in gains.items())
    return Verdict(verdict.status, f"{verdict.ours} ({shown} points)", NOT_READ, verdict.reason)


def accuracy_grid(results: Results) -> list[dict[str, str]]:
    """Every cell of the grid: final accuracy (mean over seeds, in %) by batch size, epsilon and rule."""
    rows = []
    for eps in (None, *NOISE):
        for name, cell in (("average, no attack", lambda b: _free(b, eps)),
                           *((f"MDA, {a}", lambda b, a=a: _mda(b, eps, a)) for a in ATTACKS)):
            row = {"epsilon": "none" if eps is None else f"{eps:g}", "rule": name}
            row.update({f"b={b}": results.estimate(**cell(b)).cell() for b in BATCHES})
            rows.append(row)
    return rows


STUDY = register(Study(
    name="guerraoui2021",
    title="Differential Privacy and Byzantine Resilience in SGD: Do They Add Up?",
    citation="Guerraoui, Gupta, Pinot, Rouault & Stephan, PODC 2021 (arXiv:2102.08166)",
    paper_dataset="phishing",
    runs_on="fashionmnist",
    metric="final",
    claims=[
        Claim(f"without noise, MDA under ALIE and IPM ends within {CLOSE * 100:g} points of the attack-free average "
              "at every batch size", resilience_alone,
              "Paraphrase: the paper takes MDA's resilience without privacy as given; its experiment runs the "
              "noiseless case (epsilon none in the authors' reproduce.py) beside the noisy ones."),
        Claim(f"without attack, the noisy average at batch 500 ends within {CLOSE * 100:g} points of the noiseless "
              "one at every epsilon", privacy_alone,
              "Paraphrase, as above: DP-SGD alone trains; the noise a worker adds shrinks as 1/b (sensitivity "
              "2C/b in the authors' train.py)."),
        Claim(f"combined, they do not add up: in at least {SHARE:.0%} of the noisy cells, MDA under attack with "
              f"the noise loses {APART * 100:g} points or more beyond the sum of the noise's cost to the "
              "attack-free average and the attack's cost without noise", do_not_add_up,
              f"{ABSTRACT}: \"a direct composition of these techniques makes the guarantees of the resulting SGD "
              "algorithm depend unfavourably upon the number of parameters ... We validate our theoretical results "
              "through numerical experiments\"."),
        Claim(f"larger batches help: with noise, MDA under attack at batch 500 ends {GAINS * 100:g} points or more "
              "above batch 10, at every epsilon and under both attacks", larger_batches_help,
              "Paraphrase of the experiment's design: the authors sweep the batch size from 10 to 500 at each "
              "epsilon, the noise's std falling as 1/b."),
    ],
    comparison=accuracy_grid,
))
