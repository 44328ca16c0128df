"""Inner-product manipulation (Xie, Koyejo & Gupta, UAI 2020, "Fall of Empires").

Every Byzantine worker sends ``-epsilon * mean(honest)``. A small epsilon keeps
the vector close to the honest cloud, so distance-based rules accept it, while
the aggregate's inner product with the true gradient shrinks or turns negative.
"""
from __future__ import annotations

import math

import torch

from attacks.base import AttackContext, GradientAttack, register


@register("ipm")
class InnerProductManipulation(GradientAttack):
    """Inner-product manipulation (Xie et al. 2020): -epsilon times the honest mean."""

    epsilon: float = 0.1

    def validate(self) -> None:
        self.need(0 <= self.epsilon < math.inf, "a finite epsilon >= 0")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        return honest.mean(dim=0).mul_(-self.epsilon)
