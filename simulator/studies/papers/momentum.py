"""El Mhamdi, Guerraoui & Rouault, ICLR 2021: momentum at the workers makes Byzantine-resilient SGD stronger."""
from __future__ import annotations

from simulator.studies.catalogue import register
from simulator.studies.study import (FAILS, HOLDS, NOT_COMPARABLE, UNDECIDED, Claim, Results, Study, Tally, Verdict,
                                     decide)

# A case is damaged when the attack costs 20% of the attack-free top accuracy; recovered when momentum at the
# workers gives back 20% of that loss; the abstract's share of recovered cases is "more than 60%".
COSTLY, RECOVERED, SHARE = 0.20, 0.20, 0.60
ABSTRACT = ("ICLR 2021 paper, abstract as on OpenReview (forum H8UHdhWG6A3; the first arXiv version, 2003.00010v1, "
            "has no such number): \"when the attack is effective enough to decrease the highest observed top-1 "
            "cross-accuracy by at least 20% compared to the unattacked run, our technique systematically increases "
            "back the highest observed accuracy, and is able to recover at least 20% in more than 60% of the cases\"")
BASELINE = ("momentum at the update, the authors' `update` placement (momentum applied just after the rule; "
            "byzsim's momentum_at = \"update\")")
PAPER = "over 736 configurations (2 attacks, 6 defences), each run with seeds 1-5, against momentum at the update"


def _cases(results: Results) -> list[tuple[dict, dict, dict]]:
    """(attack-free reference, momentum at the update, momentum at the workers) for every attacked setting."""
    keys = ("aggregator", "attack", "nb_real_byz", "lr", "nesterov")
    settings = {tuple(row.group.identity[k] for k in keys) for row in results.rows(momentum_at="worker")
                if not row.group.identity["attack"].startswith("none")}
    cases = []
    for setting in sorted(settings, key=repr):
        where = dict(zip(keys, setting))
        free = {"attack": "none", "nb_workers": 51 - where["nb_real_byz"], "lr": where["lr"],
                "nesterov": where["nesterov"]}
        cases.append((free, where | {"momentum_at": "update"}, where | {"momentum_at": "worker"}))
    return cases


def _damaged(results: Results, free: dict, update: dict) -> str:
    """Whether the attack costs COSTLY of the attack-free top accuracy: (1 - COSTLY) free - update >= 0."""
    return decide(results.combination([(1.0 - COSTLY, free), (-1.0, update)]), 0.0)


def _tally(results: Results, meets) -> Tally:
    return Tally.of((_damaged(results, free, update), meets(free, update, worker))
                    for free, update, worker in _cases(results))


def worker_momentum_recovers(results: Results) -> Verdict:
    def recovers(free: dict, update: dict, worker: dict) -> str:  # worker - update >= RECOVERED (free - update)
        return decide(results.combination([(1.0, worker), (RECOVERED - 1.0, update), (-RECOVERED, free)]), 0.0)

    tally = _tally(results, recovers)
    status = tally.decide(SHARE, strictly=True)
    if status == NOT_COMPARABLE:
        return Verdict(status, f"no damaged setting ({tally.missing} incomplete)", PAPER,
                       "the attacks did not cost 20% of the attack-free accuracy anywhere: nothing to recover")
    reason = {HOLDS: "worker momentum gives back a fifth of the loss in more than 60% of the damaged settings, "
                     "intervals included",
              FAILS: "worker momentum gives back a fifth of the loss in 60% of the damaged settings or fewer, even "
                     "at best",
              UNDECIDED: "the intervals leave open whether more than 60% of the damaged settings recover a fifth"}
    return Verdict(status, f"{tally.text()} settings damaged by 20%+ recover 20%+ of the loss with momentum at the "
                           f"workers, against {BASELINE}", PAPER, reason[status])


def worker_momentum_always_helps(results: Results) -> Verdict:
    def increases(free: dict, update: dict, worker: dict) -> str:
        return decide(results.difference(worker, update), 0.0)

    tally = _tally(results, increases)
    status = tally.decide(1.0)
    if status == NOT_COMPARABLE:
        return Verdict(status, f"no damaged setting ({tally.missing} incomplete)", PAPER,
                       "the attacks did not cost 20% of the attack-free accuracy anywhere")
    reason = {HOLDS: "momentum at the workers is ahead in every damaged setting, intervals included",
              FAILS: "momentum at the workers is behind in some damaged setting beyond the interval",
              UNDECIDED: "the intervals leave open whether momentum at the workers is ahead in every damaged setting"}
    return Verdict(status, f"{tally.text()} settings damaged by 20%+ gain top accuracy with momentum at the "
                           f"workers, against {BASELINE}", PAPER, reason[status])


STUDY = register(Study(
    name="momentum",
    title="Distributed Momentum for Byzantine-resilient Stochastic Gradient Descent",
    citation="El Mhamdi, Guerraoui & Rouault, ICLR 2021",
    paper_dataset="mnist",
    metric="best",
    claims=[
        Claim("among settings where the attack costs 20% or more of the attack-free top accuracy, momentum at the "
              "workers gives back 20% or more of the loss in more than 60% of them", worker_momentum_recovers,
              ABSTRACT),
        Claim("in every such setting, momentum at the workers raises the top accuracy", worker_momentum_always_helps,
              ABSTRACT),
    ],
))
