"""Bit flipping / reversed gradient: each Byzantine worker sends minus its own gradient.

The worker computes an honest gradient on its own data, then reverses it
(e.g. Allen-Zhu et al., ICLR 2021 "bit flipping"; Blades and ByzFL offer it).
Its own gradient comes from ``ctx.own()``, which the simulator computes on
the Byzantine workers' batches when asked. ``scale`` multiplies the reversed
gradient (1 = the plain attack); ``momentum=false`` reverses the raw gradient,
without the worker momentum honest workers apply (the bucketing paper's code).
"""
from __future__ import annotations

import math

import torch

from attacks.base import AttackContext, GradientAttack, register


@register("bitflip")
class BitFlip(GradientAttack):
    """Bit flipping: each Byzantine worker sends minus its own honest gradient."""

    needs_honest = False
    scale: float = 1.0
    momentum: bool = True

    def validate(self) -> None:
        self.need(0 < self.scale < math.inf, "a finite scale > 0")

    def forge(self, honest: torch.Tensor, f: int, ctx: AttackContext) -> torch.Tensor:
        own = ctx.own(self.momentum)
        if tuple(own.shape) != (f, honest.shape[1]):
            raise ValueError(f"Attack {self.name!r} needs the Byzantine workers' own gradients "
                             f"[{f}, {honest.shape[1]}] in ctx.own_gradients, got {tuple(own.shape)}.")
        return own.to(device=honest.device, dtype=honest.dtype).mul(-self.scale)


@register("reverse")
class Reverse(BitFlip):
    """Reversed gradient: each Byzantine worker sends minus (scale times) its own gradient."""
