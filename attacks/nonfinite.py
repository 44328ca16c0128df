"""Non-finite vectors: every coordinate +inf, or every coordinate NaN.

They test that a rule survives overflowed or corrupted gradients: averaging
propagates them, robust rules must discard them.
"""
from __future__ import annotations

import torch

from attacks.base import AttackContext, GradientAttack, register


@register("inf")
class Infinity(GradientAttack):
    """Non-finite vectors: every coordinate +inf."""

    needs_honest = False
    value = float("inf")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        return honest.new_full((f, honest.shape[1]), self.value)


@register("nan")
class NotANumber(Infinity):
    """Non-finite vectors: every coordinate NaN."""

    value = float("nan")
