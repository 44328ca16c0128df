"""El Mhamdi, Guerraoui & Rouault, ICLR 2021: momentum at the workers makes Byzantine-resilient SGD stronger."""
from __future__ import annotations

import math

from simulator.studies.catalogue import register
from simulator.studies.study import FAILS, HOLDS, NOT_COMPARABLE, Claim, Results, Study, Verdict

COSTLY, RECOVERED = 0.20, 0.20  # the attack costs 20% of the attack-free top accuracy; momentum gives back 20%


def _cells(results: Results) -> list[tuple[str, str, int, float, bool]]:
    """Every (rule, attack, f, lr, nesterov) run under attack, with both momentum placements."""
    identities = [row.group.identity for row in results.rows(momentum_at="worker")]
    keys = {tuple(i[k] for k in ("aggregator", "attack", "nb_real_byz", "lr", "nesterov")) for i in identities
            if not i["attack"].startswith("none")}
    return sorted(keys, key=repr)


def _attack_free(results: Results, f: int, lr: float, nesterov: bool) -> float:
    return results.value(attack="none", nb_workers=51 - f, lr=lr, nesterov=nesterov)


def worker_momentum_recovers(results: Results) -> Verdict:
    costly, recovered, missing = 0, 0, 0
    for rule, attack, f, lr, nesterov in _cells(results):
        top = _attack_free(results, f, lr, nesterov)
        at = {place: results.value(aggregator=rule, attack=attack, nb_real_byz=f, lr=lr, nesterov=nesterov,
                                   momentum_at=place) for place in ("update", "worker")}
        if any(math.isnan(v) for v in (top, *at.values())):
            missing += 1
            continue
        loss = top - at["update"]
        if loss >= COSTLY * top:
            costly += 1
            recovered += (at["worker"] - at["update"]) >= RECOVERED * loss
    if costly == 0:
        return Verdict(NOT_COMPARABLE, f"no setting where the attack costs {COSTLY:.0%} ({missing} incomplete)",
                       "most of the damaged settings",
                       "the attacks did not cost 20% of the attack-free accuracy anywhere: nothing to recover")
    holds = recovered > costly / 2
    return Verdict(
        HOLDS if holds else FAILS,
        f"{recovered}/{costly} settings where the attack costs {COSTLY:.0%}+ of the attack-free top accuracy "
        f"recover {RECOVERED:.0%}+ of the loss with momentum at the workers",
        "more than 60% of the damaged cases (the abstract; per seed, against momentum at the server)",
        "worker momentum gives back a fifth of the loss in most damaged settings" if holds else
        "worker momentum gives back a fifth of the loss in half of the damaged settings or fewer")


STUDY = register(Study(
    name="momentum",
    title="Distributed Momentum for Byzantine-resilient Stochastic Gradient Descent",
    citation="El Mhamdi, Guerraoui & Rouault, ICLR 2021",
    paper_dataset="mnist",
    metric="best",
    claims=[
        Claim("among settings where the attack costs at least 20% of the attack-free top accuracy, momentum at the "
              "workers recovers at least 20% of the loss in most of them", worker_momentum_recovers),
    ],
))
