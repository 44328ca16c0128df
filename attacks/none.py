"""No attack: the Byzantine workers behave honestly.

Useful as the baseline row of a benchmark. The simulator may simply treat
these workers as honest (``kind == "none"``); called, the attack returns the
workers' own honest gradients, which is why it asks for them.
"""
from __future__ import annotations

import torch

from attacks.base import Attack, AttackContext, register


@register("none")
class NoAttack(Attack):
    """No attack: the Byzantine workers send their own honest gradients."""

    kind = "none"
    needs_own_gradients = True

    def __call__(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        if f == 0:
            return honest.new_empty((0, honest.shape[-1]))
        own = ctx.own_gradients
        if own is None or own.shape[0] != f:
            raise ValueError("Attack 'none' needs the Byzantine workers' own honest gradients "
                             f"[{f}, d] in ctx.own_gradients (or treat these workers as honest).")
        return own.clone()
