"""Sign flipping: every Byzantine worker sends minus the honest mean.

The simplest omniscient attack (e.g. Allen-Zhu et al., ICLR 2021; Karimireddy
et al., ICML 2021): averaging with it cancels the honest signal.
"""
from __future__ import annotations

import torch

from attacks.base import AttackContext, GradientAttack, register


@register("signflip")
class SignFlip(GradientAttack):
    """Sign flipping: minus the honest mean."""

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        return honest.mean(dim=0).neg_()
