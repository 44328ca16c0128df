"""Gaussian noise: each Byzantine worker sends an independent N(mean, std^2) vector.

A non-omniscient baseline (e.g. Blanchard et al., NeurIPS 2017 use Gaussian
Byzantine vectors). Randomness comes only from the context's generator.
"""
from __future__ import annotations

import torch

from attacks.base import AttackContext, GradientAttack, register
from attacks.params import real


@register("gaussian")
class Gaussian(GradientAttack):
    """Gaussian noise of a given std (and mean), independent per Byzantine worker."""

    needs_honest = False

    def __init__(self, std: float = 1.0, mean: float = 0.0):
        self.std = real(self.name, "std", std, minimum=0.0)
        self.mean = real(self.name, "mean", mean)

    def params(self) -> dict[str, object]:
        return {"std": self.std, "mean": self.mean}

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        gen = ctx.generator
        if gen is None:
            raise ValueError("Attack 'gaussian' needs a torch.Generator in ctx.generator.")
        noise = torch.randn((f, honest.shape[1]), generator=gen, device=gen.device, dtype=honest.dtype)
        return noise.to(honest.device).mul_(self.std).add_(self.mean)
