"""Inner-product manipulation (Xie, Koyejo & Gupta, UAI 2020, "Fall of Empires").

Every Byzantine worker sends ``-epsilon * mean(honest)``. A small epsilon keeps
the vector close to the honest cloud, so distance-based rules accept it, while
the aggregate's inner product with the true gradient shrinks or turns negative.
"""
from __future__ import annotations

import torch

from attacks.base import AttackContext, GradientAttack, register
from attacks.params import real


@register("ipm")
class InnerProductManipulation(GradientAttack):
    """Inner-product manipulation (Xie et al. 2020): -epsilon times the honest mean."""

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = real(self.name, "epsilon", epsilon, minimum=0.0)

    def params(self) -> dict[str, object]:
        return {"epsilon": self.epsilon}

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        return honest.mean(dim=0).mul_(-self.epsilon)
