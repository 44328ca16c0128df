"""Zero vectors: the Byzantine workers send nothing useful (a crash-like fault)."""
from __future__ import annotations

import torch

from attacks.base import AttackContext, GradientAttack, register


@register("zero")
class Zero(GradientAttack):
    """Zero vectors (crashed or silent workers)."""

    needs_honest = False

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        return honest.new_zeros((f, honest.shape[1]))
