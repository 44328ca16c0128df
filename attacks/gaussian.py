"""Gaussian noise: Byzantine workers send N(mean, std^2) vectors.

A non-omniscient baseline (e.g. Blanchard et al., NeurIPS 2017 use Gaussian
Byzantine vectors). By default every Byzantine worker draws its own vector;
with ``shared=true`` one vector is drawn and sent by all of them, which is
ByzFL's ``Gaussian`` attack. Randomness comes only from the attacker's
generator (``ctx.generator``).
"""
from __future__ import annotations

import math

import torch

from attacks.base import AttackContext, GradientAttack, register


@register("gaussian")
class Gaussian(GradientAttack):
    """Gaussian noise of a given std and mean: independent per Byzantine worker, or one shared vector."""

    needs_honest = False
    std: float = 1.0
    mean: float = 0.0
    shared: bool = False

    def validate(self) -> None:
        self.need(0 <= self.std < math.inf and math.isfinite(self.mean), "a finite std >= 0 and a finite mean")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        gen = ctx.generator
        if gen is None:
            raise ValueError("Attack 'gaussian' needs a torch.Generator in ctx.generator.")
        shape = (honest.shape[1],) if self.shared else (f, honest.shape[1])
        noise = torch.randn(shape, generator=gen, device=gen.device, dtype=honest.dtype)
        return noise.to(honest.device).mul_(self.std).add_(self.mean)
