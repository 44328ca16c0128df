"""The dissensus attack (He, Karimireddy & Jaggi, "Byzantine-Robust Decentralized Learning via ClippedGossip",
arXiv 2202.01545, Section 4; their code's ``DissensusWorker``).

Aimed at one honest node i: its Byzantine neighbours all send

    x_i - epsilon * sum_j w_ij (x_j - x_i) / sum_b w_ib

over its honest neighbours j and Byzantine neighbours b, so that with epsilon = 1
plain gossip leaves node i where it was (the honest pull is cancelled) and with
epsilon > 1 pushes it away from its neighbours: the nodes drift apart instead of
reaching consensus. In a decentralised run (``--topology``) the weights are the
mixing matrix's when the rule is a gossip rule and equal otherwise (as the
authors' code does for the median, Krum ...), and each honest node with
Byzantine neighbours is aimed at (`simulator.core.decentralised.messages`). Given
vectors as a server's rule gets them, the target is the first honest row, the
other rows its honest neighbours, all weights equal. epsilon defaults to 1.5,
the value of the authors' experiments (``dissensus1.5`` in their ``run.sh``).
"""
from __future__ import annotations

import math

import torch

from attacks.base import AttackContext, GradientAttack, register


@register("dissensus")
class Dissensus(GradientAttack):
    """Dissensus (He et al. 2022): x_i - epsilon * sum_j w_ij (x_j - x_i) / sum_b w_ib, aimed at each honest node"""

    epsilon: float = 1.5

    def validate(self) -> None:
        self.need(0 <= self.epsilon < math.inf, "a finite epsilon >= 0")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        target = honest[0]
        pull = (honest[1:] - target).sum(dim=0)
        return target - self.epsilon * pull / f
